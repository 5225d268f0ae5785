import { useState } from 'react';
import { useQuery } from 'urql';
import { JOBS, type JobsData, type JobsVariables, type JobWithOutputs, MODEL_AUDIO_JOBS, MODEL_JOBS, type ModelJobsData, type ModelJobsVariables } from '../api/job-operations';
import { type GenerationStatus, MODELS, type ModelsData } from '../api/operations';
import { KIND_VIEWS, kindView } from '../kinds/registry';
import { jobFileName, OutputItem } from '../outputs/output-views';
import { Link } from '../router';
import { formatDate, STATUS_LABELS } from '../ui/format';
import { Problems } from '../ui/problems';
import { StatusBadge } from '../ui/status-badge';

export const PAGE_SIZE = 12;

const FILTERS: (GenerationStatus | '')[] = ['COMPLETED', 'FAILED', 'CANCELLED', 'RUNNING', 'PENDING', ''];

/** A page of the connection: forward from a cursor, or back from one (Relay's `before`/`last`). */
type Page = { after?: string } | { before: string };

const paging = (page: Page) => ('before' in page ? { last: PAGE_SIZE, before: page.before } : { first: PAGE_SIZE, after: page.after ?? null });

function GalleryItem({ job }: { job: JobWithOutputs }) {
  const title = kindView(job.kind).title(job);
  const first = job.outputs[0];
  const to = `/gallery/${job.id}`;
  return (
    <li className="gallery-item" aria-label={`${STATUS_LABELS[job.status]}: ${title}`} data-job-id={job.id}>
      {first ? (
        <OutputItem output={first} of={title} fileName={jobFileName(job.id, first)} to={to} />
      ) : (
        <Link to={to} className="placeholder" tabIndex={-1} aria-hidden>
          {STATUS_LABELS[job.status]}
        </Link>
      )}
      <Link to={to} className="gallery-caption">
        <span className="job-prompt">{title}</span>
        <span className="muted">
          <StatusBadge status={job.status} /> {job.outputs.length > 1 ? `${job.outputs.length} outputs · ` : ''}
          {formatDate(job.createdAt)}
        </span>
      </Link>
    </li>
  );
}

/**
 * Jobs of every kind (or of one), newest first, a page at a time, filtered by status; or the
 * jobs made with one model (images with a base model or a LoRA, music with a music model).
 */
export function GalleryPage() {
  const [status, setStatus] = useState<GenerationStatus | ''>('COMPLETED');
  const [kind, setKind] = useState('');
  const [modelId, setModelId] = useState('');
  const [page, setPage] = useState<Page>({});
  const [bases] = useQuery<ModelsData>({ query: MODELS, variables: { kind: 'BASE', first: 100 } });
  const [loras] = useQuery<ModelsData>({ query: MODELS, variables: { kind: 'LORA', first: 100 } });
  const jobsVariables: JobsVariables = { kind: kind || null, status: status || null, ...paging(page) };
  const modelVariables: ModelJobsVariables = { modelId, status: status || null, ...paging(page) };
  const [byKind] = useQuery<JobsData>({ query: JOBS, variables: jobsVariables, pause: modelId !== '' });
  // A model's jobs are of its modality's kind: images, or music (`audioGenerations(modelId:)`).
  const modelKind = bases.data?.models.edges.find((e) => e.node.id === modelId)?.node.modality === 'audio' ? 'audio' : 'image';
  const [byModel] = useQuery<ModelJobsData>({ query: modelKind === 'audio' ? MODEL_AUDIO_JOBS : MODEL_JOBS, variables: modelVariables, pause: modelId === '' });
  const result = modelId ? byModel : byKind;
  const conn = modelId ? byModel.data?.generations : byKind.data?.jobs;
  const hasNext = 'before' in page ? true : (conn?.pageInfo.hasNextPage ?? false);
  const hasPrevious = 'before' in page ? (conn?.pageInfo.hasPreviousPage ?? false) : page.after !== undefined;
  const refilter = <T,>(setter: (v: T) => void) => (v: T) => {
    setter(v);
    setPage({});
  };
  const modelGroups: [string, ModelsData | undefined][] = [
    ['Base models', bases.data],
    ['LoRA adapters', loras.data],
  ];

  return (
    <div>
      <h1 tabIndex={-1}>Gallery</h1>
      <div className="toolbar">
        <label htmlFor="status-filter">Status</label>
        <select id="status-filter" value={status} onChange={(e) => refilter(setStatus)(e.target.value as GenerationStatus | '')}>
          {FILTERS.map((s) => (
            <option key={s} value={s}>
              {s ? STATUS_LABELS[s] : 'Any status'}
            </option>
          ))}
        </select>
        <label htmlFor="model-filter">Model</label>
        <select id="model-filter" value={modelId} onChange={(e) => refilter(setModelId)(e.target.value)}>
          <option value="">Any model</option>
          {modelGroups.map(([label, data]) => (
            <optgroup key={label} label={label}>
              {data?.models.edges.map(({ node: m }) => (
                <option key={m.id} value={m.id}>
                  {m.name}
                </option>
              ))}
            </optgroup>
          ))}
        </select>
        <label htmlFor="kind-filter">Kind</label>
        <select id="kind-filter" value={modelId ? modelKind : kind} disabled={modelId !== ''} onChange={(e) => refilter(setKind)(e.target.value)}>
          <option value="">Every kind</option>
          {KIND_VIEWS.map((v) => (
            <option key={v.kind} value={v.kind}>
              {v.label}
            </option>
          ))}
        </select>
        <span className="muted">{modelId ? `${kindView(modelKind).label} made with this model, newest first.` : 'Newest first.'}</span>
      </div>
      <Problems error={result.error} />
      {conn && conn.edges.length === 0 && <p className="muted">Nothing here yet.</p>}
      <ul className="gallery" aria-busy={result.fetching}>
        {conn?.edges.map(({ node }) => (
          <GalleryItem key={node.id} job={node} />
        ))}
      </ul>
      <nav className="pager" aria-label="Pages">
        <button type="button" disabled={!hasPrevious || !conn} onClick={() => conn?.pageInfo.startCursor && setPage({ before: conn.pageInfo.startCursor })}>
          ← Newer
        </button>
        <button type="button" disabled={!hasNext || !conn} onClick={() => conn?.pageInfo.endCursor && setPage({ after: conn.pageInfo.endCursor })}>
          Older →
        </button>
      </nav>
    </div>
  );
}
