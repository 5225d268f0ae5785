import { useMutation } from 'urql';
import { DELETE_MODEL, type Model } from '../api/operations';
import { trainerLabel } from '../kinds/training-kind';
import { Link } from '../router';
import { ConfirmButton } from '../ui/confirm-button';
import { formatBytes, formatDate } from '../ui/format';
import { Problems } from '../ui/problems';

function ModelRow({ model, onDeleted }: { model: Model; onDeleted: () => void }) {
  const [removal, remove] = useMutation(DELETE_MODEL);
  const destroy = async () => {
    const r = await remove({ id: model.id });
    if (!r.error) onDeleted();
  };
  return (
    <li className="card model" data-model-id={model.id} aria-label={model.name}>
      <div className="model-head">
        <strong>{model.name}</strong>
        {model.isDefault && <span className="badge">default</span>}
        {model.builtin && <span className="badge">built-in</span>}
      </div>
      <dl className="model-facts">
        <div>
          <dt>Pipeline</dt>
          <dd>{model.pipeline}</dd>
        </div>
        {model.baseModel && (
          <div>
            <dt>For</dt>
            <dd>{model.baseModel.name}</dd>
          </div>
        )}
        {model.training && (
          <div>
            <dt>Trained on</dt>
            <dd>
              {model.training.datasetName} ({trainerLabel(model.training.trainer)})
              {model.training.training && (
                <>
                  {' · '}
                  <Link to={`/train/${model.training.training.id}`}>its training</Link>
                </>
              )}
            </dd>
          </div>
        )}
        {model.triggerWord && (
          <div>
            <dt>Trigger word</dt>
            <dd>{model.triggerWord}</dd>
          </div>
        )}
        <div>
          <dt>Size</dt>
          <dd>{formatBytes(model.sizeBytes)}</dd>
        </div>
        <div>
          <dt>Files</dt>
          <dd>{model.files.length}</dd>
        </div>
        {model.sha256 && (
          <div>
            <dt>SHA-256</dt>
            <dd title={model.sha256}>
              <code>{model.sha256.slice(0, 12)}…</code>
            </dd>
          </div>
        )}
        <div>
          <dt>Added</dt>
          <dd>{formatDate(model.createdAt)}</dd>
        </div>
      </dl>
      <div className="actions">
        {model.downloadUrl ? (
          <a href={model.downloadUrl}>Download</a>
        ) : (
          model.files.length > 0 && (
            <details>
              <summary>Download files</summary>
              <ul>
                {model.files.map((f) => (
                  <li key={f.path}>
                    <a href={f.downloadUrl}>{f.path}</a> <span className="muted">{formatBytes(f.sizeBytes)}</span>
                  </li>
                ))}
              </ul>
            </details>
          )
        )}
        <ConfirmButton label="Delete" confirmLabel={`Delete ${model.name} and its files?`} onConfirm={() => void destroy()} disabled={removal.fetching} />
      </div>
      <Problems error={removal.error} />
    </li>
  );
}

export function ModelList({ models, onChanged }: { models: Model[]; onChanged: () => void }) {
  if (models.length === 0) return <p className="muted">None yet.</p>;
  return (
    <ul className="model-list">
      {models.map((m) => (
        <ModelRow key={m.id} model={m} onDeleted={onChanged} />
      ))}
    </ul>
  );
}
