import { useState } from 'react';
import { useQuery } from 'urql';
import { GENERATIONS, type GenerationsData, type GenerationStatus } from '../api/operations';
import { Link } from '../router';
import { formatDate, STATUS_LABELS } from '../ui/format';
import { Problems } from '../ui/problems';
import { StatusBadge } from '../ui/status-badge';

export const PAGE_SIZE = 12;

const FILTERS: (GenerationStatus | '')[] = ['COMPLETED', 'FAILED', 'CANCELLED', 'RUNNING', 'PENDING', ''];

/** A page of the connection: forward from a cursor, or back from one (Relay's `before`/`last`). */
type Page = { after?: string } | { before: string };

/** Generations, newest first, a page at a time, filtered by status. */
export function GalleryPage() {
  const [status, setStatus] = useState<GenerationStatus | ''>('COMPLETED');
  const [page, setPage] = useState<Page>({});
  const variables = 'before' in page ? { status: status || null, last: PAGE_SIZE, before: page.before } : { status: status || null, first: PAGE_SIZE, after: page.after ?? null };
  const [result] = useQuery<GenerationsData>({ query: GENERATIONS, variables });
  const conn = result.data?.generations;
  const hasNext = 'before' in page ? true : (conn?.pageInfo.hasNextPage ?? false);
  const hasPrevious = 'before' in page ? (conn?.pageInfo.hasPreviousPage ?? false) : page.after !== undefined;

  return (
    <div>
      <h1 tabIndex={-1}>Gallery</h1>
      <div className="toolbar">
        <label htmlFor="status-filter">Status</label>
        <select
          id="status-filter"
          value={status}
          onChange={(e) => {
            setStatus(e.target.value as GenerationStatus | '');
            setPage({});
          }}
        >
          {FILTERS.map((s) => (
            <option key={s} value={s}>
              {s ? STATUS_LABELS[s] : 'Any status'}
            </option>
          ))}
        </select>
        <span className="muted">Newest first.</span>
      </div>
      <Problems error={result.error} />
      {conn && conn.edges.length === 0 && <p className="muted">Nothing here yet.</p>}
      <ul className="gallery" aria-busy={result.fetching}>
        {conn?.edges.map(({ node: g }) => (
          <li key={g.id}>
            <Link to={`/gallery/${g.id}`} className="gallery-item" aria-label={`${STATUS_LABELS[g.status]}: ${g.prompt}`}>
              {g.images[0] ? (
                <img src={g.images[0].url} alt="" width={g.images[0].width} height={g.images[0].height} loading="lazy" />
              ) : (
                <span className="placeholder">{STATUS_LABELS[g.status]}</span>
              )}
              <span className="gallery-caption">
                <span className="job-prompt">{g.prompt}</span>
                <span className="muted">
                  <StatusBadge status={g.status} /> {g.images.length > 1 ? `${g.images.length} images · ` : ''}
                  {formatDate(g.createdAt)}
                </span>
              </span>
            </Link>
          </li>
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
