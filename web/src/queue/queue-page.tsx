import { useEffect, useRef, useState } from 'react';
import { type CombinedError, useClient, useMutation, useQuery } from 'urql';
import { CANCEL, EVENTS, type EventsData, type Generation, type GenerationEvent, QUEUE, type QueueData, TERMINAL } from '../api/operations';
import { stepText } from '../generate/job-card';
import { Link } from '../router';
import { formatDate, formatSeconds } from '../ui/format';
import { Problems } from '../ui/problems';
import { ProgressBar } from '../ui/progress-bar';
import { StatusBadge } from '../ui/status-badge';

const SHOWN = 50;
/** Re-reads of the lists after events that change them, at most this often. */
const REFRESH_MS = 500;

function QueueRow({ g, live }: { g: Generation; live: GenerationEvent | undefined }) {
  const [cancel, runCancel] = useMutation(CANCEL);
  const progress = live?.progress ?? g.progress;
  return (
    <li className="card queue-row" data-generation-id={g.id}>
      <div className="queue-row-head">
        <StatusBadge status={live?.status ?? g.status} />
        <Link to={`/gallery/${g.id}`} className="job-prompt">
          {g.prompt}
        </Link>
        <span className="muted">
          {g.model.name} · {g.width}×{g.height} · {g.steps} steps{g.priority ? ` · priority ${g.priority}` : ''}
        </span>
      </div>
      <ProgressBar value={progress} label={`Progress of "${g.prompt}"`} />
      <div className="queue-row-foot">
        <span>{live ? stepText(live, g.cancelRequested || Boolean(cancel.data)) : g.status === 'PENDING' ? `queued ${formatDate(g.createdAt)}` : stepText({ step: g.currentStep, stepIndex: null, stepCount: null, etaSeconds: null })}</span>
        <button type="button" onClick={() => void runCancel({ id: g.id })} disabled={cancel.fetching || Boolean(cancel.data)}>
          Cancel
        </button>
      </div>
      <Problems error={cancel.error} />
    </li>
  );
}

/** Pending and running generations, live from generationEvents, with the queue's counts. */
export function QueuePage() {
  const client = useClient();
  const [queue, refetch] = useQuery<QueueData>({ query: QUEUE, variables: { first: SHOWN } });
  const [live, setLive] = useState<Map<string, GenerationEvent>>(new Map());
  const [streamError, setStreamError] = useState<CombinedError | undefined>();
  const known = useRef(new Set<string>());
  known.current = new Set([...(queue.data?.running.edges ?? []), ...(queue.data?.pending.edges ?? [])].map((e) => e.node.id));

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const refreshSoon = () => {
      timer ??= setTimeout(() => {
        timer = undefined;
        refetch({ requestPolicy: 'network-only' });
      }, REFRESH_MS);
    };
    const { unsubscribe } = client.subscription<EventsData>(EVENTS, {}).subscribe((result) => {
      setStreamError(result.error);
      const e = result.data?.generationEvents;
      if (!e) return;
      setLive((m) => new Map(m).set(e.generationId, e));
      // A new job, or one that started or ended: the lists and counts change, so re-read them.
      if (!known.current.has(e.generationId) || TERMINAL.has(e.status) || e.step === 'LOADING_MODEL') refreshSoon();
    });
    return () => {
      unsubscribe();
      clearTimeout(timer);
    };
  }, [client, refetch]);

  const stats = queue.data?.queueStats;
  const section = (title: string, list: Generation[]) => (
    <section aria-label={title}>
      <h2>
        {title} <span className="muted">({list.length})</span>
      </h2>
      {list.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <ul className="queue-list">
          {list.map((g) => (
            <QueueRow key={g.id} g={g} live={live.get(g.id)} />
          ))}
        </ul>
      )}
    </section>
  );

  return (
    <div>
      <h1 tabIndex={-1}>Queue</h1>
      <p className="muted" aria-live="polite">
        {streamError ? 'Live updates are interrupted.' : 'Live: every job\u2019s events as they happen.'}
      </p>
      <Problems error={queue.error ?? streamError} />
      {stats && (
        <dl className="stats" aria-label="Queue statistics">
          <div>
            <dt>Pending</dt>
            <dd>{stats.pending}</dd>
          </div>
          <div>
            <dt>Running</dt>
            <dd>{stats.running}</dd>
          </div>
          <div>
            <dt>Completed</dt>
            <dd>{stats.completed}</dd>
          </div>
          <div>
            <dt>Failed</dt>
            <dd>{stats.failed}</dd>
          </div>
          <div>
            <dt>Cancelled</dt>
            <dd>{stats.cancelled}</dd>
          </div>
          <div>
            <dt>Oldest pending</dt>
            <dd>{formatSeconds(stats.oldestPendingAgeSeconds)}</dd>
          </div>
          <div>
            <dt>Average run</dt>
            <dd>{formatSeconds(stats.averageProcessingSeconds)}</dd>
          </div>
        </dl>
      )}
      {queue.data && section('Running', queue.data.running.edges.map((e) => e.node).filter((g) => !TERMINAL.has(live.get(g.id)?.status ?? g.status)))}
      {queue.data && section('Pending', queue.data.pending.edges.map((e) => e.node).filter((g) => !TERMINAL.has(live.get(g.id)?.status ?? g.status)))}
    </div>
  );
}
