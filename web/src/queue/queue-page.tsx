import { useEffect, useRef, useState } from 'react';
import { type CombinedError, useClient, useMutation, useQuery } from 'urql';
import { CANCEL_JOB, type CancelJobData, EVENTS, type EventsData, type Job, type JobEvent, QUEUE, type QueueData, TERMINAL } from '../api/job-operations';
import { stepText } from '../generate/job-card';
import { kindView } from '../kinds/registry';
import { Link } from '../router';
import { formatDate, formatSeconds } from '../ui/format';
import { Problems } from '../ui/problems';
import { ProgressBar } from '../ui/progress-bar';
import { StatusBadge } from '../ui/status-badge';
import { WorkersSection } from './workers-section';

const SHOWN = 50;
/** Re-reads of the lists after events that change them, at most this often. */
const REFRESH_MS = 500;

function QueueRow({ job, live }: { job: Job; live: JobEvent | undefined }) {
  const [cancel, runCancel] = useMutation<CancelJobData>(CANCEL_JOB);
  const view = kindView(job.kind);
  const title = view.title(job);
  const progress = live?.progress ?? job.progress;
  return (
    <li className="card queue-row" data-job-id={job.id}>
      <div className="queue-row-head">
        <StatusBadge status={live?.status ?? job.status} />
        <Link to={`/gallery/${job.id}`} className="job-prompt">
          {title}
        </Link>
        <span className="muted">{view.summary(job)}</span>
      </div>
      <ProgressBar value={progress} label={`Progress of "${title}"`} />
      <div className="queue-row-foot">
        <span>
          {live
            ? stepText(live, job.cancelRequested || Boolean(cancel.data), view.unit)
            : job.status === 'PENDING'
              ? `queued ${formatDate(job.createdAt)}`
              : stepText({ step: job.currentStep, stepIndex: null, stepCount: null, etaSeconds: null })}
        </span>
        <button type="button" onClick={() => void runCancel({ id: job.id })} disabled={cancel.fetching || Boolean(cancel.data)}>
          Cancel
        </button>
      </div>
      <Problems error={cancel.error} />
    </li>
  );
}

/** Pending and running jobs of every kind, live from generationEvents, with the queue's counts and its workers. */
export function QueuePage() {
  const client = useClient();
  const [queue, refetch] = useQuery<QueueData>({ query: QUEUE, variables: { first: SHOWN } });
  const [live, setLive] = useState<Map<string, JobEvent>>(new Map());
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
      setLive((m) => new Map(m).set(e.jobId, e));
      // A new job, or one that started or ended: the lists and counts change, so re-read them.
      if (!known.current.has(e.jobId) || TERMINAL.has(e.status) || e.step === 'LOADING_MODEL') refreshSoon();
    });
    return () => {
      unsubscribe();
      clearTimeout(timer);
    };
  }, [client, refetch]);

  const stats = queue.data?.queueStats;
  const section = (title: string, list: Job[]) => (
    <section aria-label={title}>
      <h2>
        {title} <span className="muted">({list.length})</span>
      </h2>
      {list.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <ul className="queue-list">
          {list.map((job) => (
            <QueueRow key={job.id} job={job} live={live.get(job.id)} />
          ))}
        </ul>
      )}
    </section>
  );
  const unfinished = (c: QueueData['running']) => c.edges.map((e) => e.node).filter((j) => !TERMINAL.has(live.get(j.id)?.status ?? j.status));

  return (
    <div>
      <h1 tabIndex={-1}>Queue</h1>
      <p className="muted" aria-live="polite">
        {streamError ? 'Live updates are interrupted.' : 'Live: every job\u2019s events as they happen.'}
      </p>
      <Problems error={queue.error ?? streamError} />
      {stats && (
        <dl className="stats" aria-label="Queue statistics">
          {(
            [
              ['Pending', stats.pending],
              ['Running', stats.running],
              ['Completed', stats.completed],
              ['Failed', stats.failed],
              ['Cancelled', stats.cancelled],
              ['Oldest pending', formatSeconds(stats.oldestPendingAgeSeconds)],
              ['Average run', formatSeconds(stats.averageProcessingSeconds)],
            ] as const
          ).map(([label, value]) => (
            <div key={label}>
              <dt>{label}</dt>
              <dd>{value}</dd>
            </div>
          ))}
        </dl>
      )}
      {queue.data && section('Running', unfinished(queue.data.running))}
      {queue.data && section('Pending', unfinished(queue.data.pending))}
      <WorkersSection />
    </div>
  );
}
