import { useMutation } from 'urql';
import { type Dataset, DELETE_DATASET } from '../api/training-operations';
import { ConfirmButton } from '../ui/confirm-button';
import { formatBytes, formatDate } from '../ui/format';
import { Problems } from '../ui/problems';

/** Pictures of a dataset shown in its row; the rest are counted. */
const SHOWN_IMAGES = 8;

function DatasetRow({ dataset: d, onDeleted }: { dataset: Dataset; onDeleted: () => void }) {
  const [removal, remove] = useMutation(DELETE_DATASET);
  const destroy = async () => {
    const r = await remove({ id: d.id });
    if (!r.error) onDeleted();
  };
  return (
    <li className="card dataset" data-dataset-id={d.id} aria-label={d.name}>
      <div className="model-head">
        <strong>{d.name}</strong>
        {d.status !== 'READY' && <span className="badge badge-cancelled">{d.status === 'UPLOADING' ? 'upload not completed' : 'being checked'}</span>}
      </div>
      <dl className="model-facts">
        <div>
          <dt>Images</dt>
          <dd>{d.status === 'UPLOADING' ? `${d.pendingFiles.length} files announced` : d.imageCount}</dd>
        </div>
        <div>
          <dt>Size</dt>
          <dd>{formatBytes(d.sizeBytes)}</dd>
        </div>
        {d.smallestSide !== null && (
          <div>
            <dt>Smallest side</dt>
            <dd>{d.smallestSide} px</dd>
          </div>
        )}
        <div>
          <dt>Added</dt>
          <dd>{formatDate(d.createdAt)}</dd>
        </div>
      </dl>
      {d.images.length > 0 && (
        <ul className="dataset-images" aria-label={`Images of ${d.name}`}>
          {d.images.slice(0, SHOWN_IMAGES).map((i) => (
            <li key={i.file}>
              <img src={i.url} alt={i.caption ? `${i.name}: ${i.caption}` : i.name} title={i.caption || i.name} width={56} height={56} loading="lazy" />
            </li>
          ))}
          {d.images.length > SHOWN_IMAGES && <li className="muted">+{d.images.length - SHOWN_IMAGES}</li>}
        </ul>
      )}
      <div className="actions">
        <ConfirmButton label="Delete" confirmLabel={`Delete ${d.name} and its files?`} onConfirm={() => void destroy()} disabled={removal.fetching} />
      </div>
      <Problems error={removal.error} />
    </li>
  );
}

/** The datasets, newest first, each with its pictures and Delete (Kiln refuses one a pending or running training uses). */
export function DatasetList({ datasets, onChanged }: { datasets: Dataset[]; onChanged: () => void }) {
  if (datasets.length === 0) return <p className="muted">No datasets yet.</p>;
  return (
    <ul className="model-list">
      {datasets.map((d) => (
        <DatasetRow key={d.id} dataset={d} onDeleted={onChanged} />
      ))}
    </ul>
  );
}
