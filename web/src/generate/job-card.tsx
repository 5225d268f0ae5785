import { useEffect } from 'react';
import { useMutation, useQuery, useSubscription } from 'urql';
import { JOB_ERROR_MEANINGS } from '../api/errors';
import { CANCEL, GENERATION, type Generation, type GenerationData, type GenerationEvent, PROGRESS, type ProgressData, TERMINAL } from '../api/operations';
import { Link } from '../router';
import { formatSeconds, STEP_LABELS } from '../ui/format';
import { Problems } from '../ui/problems';
import { ProgressBar } from '../ui/progress-bar';
import { StatusBadge } from '../ui/status-badge';
import { submittedJobs } from './jobs';

interface Watched {
  last: GenerationEvent;
  /** The latest preview: GENERATING events carry one now and then, not every time. */
  preview: string | undefined;
}

/** Where a job stands, in words: its step, "step i/N" while it denoises, and the time left. */
export function stepText(e: Pick<GenerationEvent, 'step' | 'stepIndex' | 'stepCount' | 'etaSeconds'>, cancelRequested = false): string {
  const parts = [STEP_LABELS[e.step] ?? e.step];
  if (e.step === 'GENERATING' && e.stepIndex !== null && e.stepCount !== null) parts.push(`step ${e.stepIndex}/${e.stepCount}`);
  if (e.etaSeconds !== null && !TERMINAL.has(e.step as Generation['status'])) parts.push(`about ${formatSeconds(e.etaSeconds)} left`);
  if (cancelRequested) parts.push('cancelling…');
  return parts.join(' · ');
}

/**
 * One submitted job, live: generationProgress replays its events and streams the rest, so the
 * card is right whenever it starts watching. `watch` is false while too many cards watch already;
 * a finished job is not watched again.
 */
export function JobCard({ job, watch, onReuseSeed, onDismiss }: { job: Generation; watch: boolean; onReuseSeed: (seed: number) => void; onDismiss: () => void }) {
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
  const [final] = useQuery<GenerationData>({ query: GENERATION, variables: { id: job.id }, pause: !finished });
  const [cancel, runCancel] = useMutation(CANCEL);
  const result = final.data?.generation;
  const cancelRequested = !finished && (cancel.data?.cancelGeneration?.cancelRequested ?? false);
  const progress = last?.progress ?? job.progress;

  return (
    <article className={`card job job-${status.toLowerCase()}`} data-job-id={job.id} aria-label={`Job: ${job.prompt}`}>
      <header className="job-head">
        <StatusBadge status={status} />
        <span className="job-prompt" title={job.prompt}>
          {job.prompt}
        </span>
      </header>
      <ProgressBar value={status === 'COMPLETED' ? 1 : progress} label={`Progress of "${job.prompt}"`} />
      <p className="job-step" aria-live="polite">
        {last ? stepText(last, cancelRequested) : watch ? 'Connecting…' : 'Queued'}
      </p>
      {!finished && sub.data?.preview && <img className="job-preview" src={sub.data.preview} alt={`Preview of "${job.prompt}"`} width={job.width} height={job.height} />}
      {result && result.images.length > 0 && (
        <div className="job-images">
          {result.images.map((img, i) => (
            <Link key={img.sha256 + i} to={`/gallery/${job.id}`} aria-label={`Open image ${i + 1} of "${job.prompt}"`}>
              <img src={img.url} alt={`Image ${i + 1} of "${job.prompt}", seed ${img.seed}`} width={img.width} height={img.height} loading="lazy" />
            </Link>
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
        <span className="muted">seed {job.seed}</span>
        {!finished && (
          <button type="button" onClick={() => void runCancel({ id: job.id })} disabled={cancel.fetching || cancelRequested}>
            Cancel
          </button>
        )}
        <button type="button" onClick={() => onReuseSeed(job.seed)}>
          Reuse seed
        </button>
        {finished && <Link to={`/gallery/${job.id}`}>Details</Link>}
        {finished && (
          <button type="button" className="quiet" onClick={onDismiss} aria-label={`Dismiss "${job.prompt}"`}>
            Dismiss
          </button>
        )}
      </footer>
    </article>
  );
}
