import { useEffect } from 'react';
import { useQuery } from 'urql';
import { type BlockedQueue, type Worker, WORKERS, type WorkersData } from '../api/job-operations';
import { kindView } from '../kinds/registry';
import { Link } from '../router';
import { formatSeconds } from '../ui/format';
import { Problems } from '../ui/problems';

/** Workers report themselves every 5 s (src/jobs/workers.ts); reading them more often shows nothing new. */
export const WORKERS_REFRESH_MS = 3000;

const list = (xs: string[]) => (xs.length ? xs.join(', ') : '–');

/** How long ago, from this browser's clock: "4 s ago". */
const ago = (iso: string, now: number) => `${formatSeconds(Math.max(0, (now - Date.parse(iso)) / 1000))} ago`;

function WorkerRow({ w, now }: { w: Worker; now: number }) {
  return (
    <li className="card worker" aria-label={`Worker ${w.id}`} data-worker-id={w.id}>
      <div className="queue-row-head">
        <strong>{w.host}</strong> <span className="muted">pid {w.pid}</span>
        <span className="muted worker-heartbeat">last heartbeat {ago(w.lastHeartbeat, now)}</span>
      </div>
      <dl className="worker-facts">
        <div>
          <dt>Kinds</dt>
          <dd>{list(w.kinds)}</dd>
        </div>
        <div>
          <dt>Queues</dt>
          <dd>{list(w.queues)}</dd>
        </div>
        <div>
          <dt>Providers</dt>
          <dd>{list(w.providers)}</dd>
        </div>
        <div>
          <dt>Models loaded</dt>
          <dd>{list(w.modelsLoaded.map((m) => m.name))}</dd>
        </div>
        <div>
          <dt>Current job</dt>
          <dd>
            {w.currentJobs.length === 0
              ? 'idle'
              : w.currentJobs.map((j, i) => (
                  <span key={j.id}>
                    {i > 0 && ', '}
                    <Link to={`/gallery/${j.id}`}>{kindView(j.kind).title(j)}</Link>
                  </span>
                ))}
          </dd>
        </div>
      </dl>
    </li>
  );
}

function BlockedRow({ b }: { b: BlockedQueue }) {
  return (
    <li className="card blocked" aria-label={`Blocked queue ${b.queue}`}>
      <div className="queue-row-head">
        <strong>{b.queue}</strong>
        <span className="muted">
          {b.pending} waiting, the oldest for {formatSeconds(b.oldestPendingAgeSeconds)}
        </span>
      </div>
      <p className="blocked-reason">{b.reason}</p>
    </li>
  );
}

/** The queues whose jobs no running worker takes, and why; the running workers and what each does; read every few seconds. */
export function WorkersSection() {
  const [result, refetch] = useQuery<WorkersData>({ query: WORKERS });
  useEffect(() => {
    const t = setInterval(() => refetch({ requestPolicy: 'network-only' }), WORKERS_REFRESH_MS);
    return () => clearInterval(t);
  }, [refetch]);
  const workers = result.data?.workers;
  const blocked = result.data?.queueStats.blocked;
  // Each answer renders again, so "ago" is counted when the heartbeats were read.
  const now = Date.now();
  return (
    <>
      {blocked && blocked.length > 0 && (
        <section aria-label="Blocked queues">
          <h2>
            Blocked queues <span className="muted">({blocked.length})</span>
          </h2>
          <ul className="queue-list">
            {blocked.map((b) => (
              <BlockedRow key={b.queue} b={b} />
            ))}
          </ul>
        </section>
      )}
      <section aria-label="Workers">
        <h2>
          Workers <span className="muted">({workers?.length ?? '…'})</span>
        </h2>
        <Problems error={result.error} />
        {workers && workers.length === 0 && (
          <p className="muted">
            No worker is running: jobs wait until one starts (<code>npm start -- --role worker</code>).
          </p>
        )}
        <ul className="queue-list">
          {workers?.map((w) => (
            <WorkerRow key={w.id} w={w} now={now} />
          ))}
        </ul>
      </section>
    </>
  );
}
