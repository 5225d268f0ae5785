import { useEffect } from 'react';
import { useMutation, useQuery, useSubscription } from 'urql';
import { JOB_ERROR_MEANINGS } from '../api/errors';
import { CANCEL_JOB, type CancelJobData, JOB, type Job, type JobData, type JobEvent, PROGRESS, type ProgressData, TERMINAL } from '../api/job-operations';
import { kindView } from '../kinds/registry';
import { jobFileName, OutputItem } from '../outputs/output-views';
import { Link } from '../router';
import { formatSeconds, STEP_LABELS } from '../ui/format';
import { Problems } from '../ui/problems';
import { ProgressBar } from '../ui/progress-bar';
import { StatusBadge } from '../ui/status-badge';
import { submittedJobs } from './jobs';

interface Watched {
  last: JobEvent;
  /** The latest preview: GENERATING events carry one now and then, not every time. */
  preview: string | undefined;
}

/** The steps whose events count units of work (denoising steps, frames, training steps). */
const COUNTED = new Set(['GENERATING', 'TRAINING']);

/** Where a job stands, in words: its step, "step i/N" while it denoises or trains (its kind's unit), and the time left. */
export function stepText(e: Pick<JobEvent, 'step' | 'stepIndex' | 'stepCount' | 'etaSeconds'>, cancelRequested = false, unit = 'step'): string {
  const parts = [STEP_LABELS[e.step] ?? e.step];
  if (COUNTED.has(e.step) && e.stepIndex !== null && e.stepCount !== null) parts.push(`${unit} ${e.stepIndex}/${e.stepCount}`);
  if (e.etaSeconds !== null && !TERMINAL.has(e.step as Job['status'])) parts.push(`about ${formatSeconds(e.etaSeconds)} left`);
  if (cancelRequested) parts.push('cancelling…');
  return parts.join(' · ');
}

/**
 * One submitted job of any kind, live: generationProgress replays its events and streams the
 * rest, so the card is right whenever it starts watching. `watch` is false while too many cards
 * watch already; a finished job is not watched again. Its kind's view names it; its outputs,
 * once it is done, show as their media types do.
 */
export function JobCard({ job, watch, onReuseSeed, onDismiss }: { job: Job; watch: boolean; onReuseSeed: (seed: number) => void; onDismiss: () => void }) {
  const view = kindView(job.kind);
  const title = view.title(job);
  const [sub] = useSubscription<ProgressData, Watched>({ query: PROGRESS, variables: { id: job.id }, pause: !watch || TERMINAL.has(job.status) }, (prev, data) => ({
    last: data.generationProgress,
    preview: data.generationProgress.preview ?? prev?.preview,
  }));
  const last = sub.data?.last;
  const status = last?.status ?? job.status;
  const finished = TERMINAL.has(status);
  useEffect(() => {
    if (finished && !TERMINAL.has(job.status)) submittedJobs.update(job.id, { status, progress: last?.progress ?? 1 });
  }, [finished, job.id, job.status, status, last?.progress]);
  const [final] = useQuery<JobData>({ query: JOB, variables: { id: job.id }, pause: !finished });
  const [cancel, runCancel] = useMutation<CancelJobData>(CANCEL_JOB);
  const result = final.data?.job;
  const cancelRequested = !finished && (cancel.data?.cancelJob.cancelRequested ?? false);
  const progress = last?.progress ?? job.progress;
  const previewSize = view.previewSize(job);
  const seed = typeof job.params.seed === 'number' ? job.params.seed : undefined;

  return (
    <article className={`card job job-${status.toLowerCase()}`} data-job-id={job.id} aria-label={`Job: ${title}`}>
      <header className="job-head">
        <StatusBadge status={status} />
        <span className="job-prompt" title={title}>
          {title}
        </span>
      </header>
      <ProgressBar value={status === 'COMPLETED' ? 1 : progress} label={`Progress of "${title}"`} />
      <p className="job-step" aria-live="polite">
        {last ? stepText(last, cancelRequested, view.unit) : watch ? 'Connecting…' : 'Queued'}
      </p>
      {!finished && sub.data?.preview && <img className="job-preview" src={sub.data.preview} alt={`Preview of "${title}"`} {...previewSize} />}
      {result && result.outputs.length > 0 && (
        <div className="job-images">
          {result.outputs.map((o) => (
            <OutputItem key={o.index} output={o} of={title} fileName={jobFileName(job.id, o)} to={`/gallery/${job.id}`} />
          ))}
        </div>
      )}
      {result?.error && (
        <p className="problems" role="alert">
          <strong>{JOB_ERROR_MEANINGS[result.error.code] ?? result.error.code}</strong>: {result.error.message}
        </p>
      )}
      <Problems error={sub.error} />
      <Problems error={cancel.error} />
      <footer className="job-actions">
        {seed !== undefined && <span className="muted">seed {seed}</span>}
        {!finished && (
          <button type="button" onClick={() => void runCancel({ id: job.id })} disabled={cancel.fetching || cancelRequested}>
            Cancel
          </button>
        )}
        {seed !== undefined && (
          <button type="button" onClick={() => onReuseSeed(seed)}>
            Reuse seed
          </button>
        )}
        {finished && <Link to={`/gallery/${job.id}`}>Details</Link>}
        {finished && (
          <button type="button" className="quiet" onClick={onDismiss} aria-label={`Dismiss "${title}"`}>
            Dismiss
          </button>
        )}
      </footer>
    </article>
  );
}
