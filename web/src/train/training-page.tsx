import { useEffect } from 'react';
import { useMutation, useQuery } from 'urql';
import { JOB_ERROR_MEANINGS } from '../api/errors';
import { CANCEL_JOB, type CancelJobData, TERMINAL } from '../api/job-operations';
import { TRAINING, type TrainingData } from '../api/training-operations';
import { stepText } from '../generate/job-card';
import { GenerateWithLora, trainingKind } from '../kinds/training-kind';
import { jobFileName, OutputItem } from '../outputs/output-views';
import { Link } from '../router';
import { formatSeconds } from '../ui/format';
import { Problems } from '../ui/problems';
import { ProgressBar } from '../ui/progress-bar';
import { StatusBadge } from '../ui/status-badge';
import { LossChart } from './loss-chart';
import { useTrainingLog } from './training-log';

const short = (v: number) => (Math.abs(v) >= 1 ? v.toFixed(3) : v.toPrecision(3));

/**
 * One training, live: its progress, the loss curve and the samples as the events bring them
 * (a reload replays them), Cancel while it runs and, once its adapter is registered,
 * "Generate with this LoRA".
 */
export function TrainingPage({ id }: { id: string }) {
  const [result, refetch] = useQuery<TrainingData>({ query: TRAINING, variables: { id } });
  const log = useTrainingLog(id);
  const [cancel, runCancel] = useMutation<CancelJobData>(CANCEL_JOB);
  const t = result.data?.training;
  const status = log.last?.status ?? t?.status;
  const finished = status !== undefined && TERMINAL.has(status);

  // The adapter is registered with COMPLETED: read the training again to learn it.
  useEffect(() => {
    if (finished && t && t.status !== status) refetch({ requestPolicy: 'network-only' });
  }, [finished, status, t, refetch]);

  if (result.fetching && !t) return <p className="muted">Loading…</p>;
  if (!t) {
    return (
      <div>
        <h1 tabIndex={-1}>Not found</h1>
        <Problems error={result.error} />
        {!result.error && <p>There is no training {id}; it may have been deleted.</p>}
        <Link to="/train">Back to training</Link>
      </div>
    );
  }

  const title = trainingKind.title(t);
  const cancelRequested = !finished && (cancel.data?.cancelJob.cancelRequested || t.cancelRequested);
  const lastLoss = log.loss.at(-1);
  const error = t.error;
  return (
    <article className="training" data-job-id={t.id}>
      <p>
        <Link to="/train">← Train</Link>
      </p>
      <h1 tabIndex={-1} className="generation-title">
        {title}
      </h1>
      <p>
        <StatusBadge status={status ?? t.status} /> <span className="muted">{trainingKind.summary(t)}</span>
      </p>
      <ProgressBar value={status === 'COMPLETED' ? 1 : (log.last?.progress ?? t.progress)} label={`Progress of "${title}"`} />
      <p className="job-step" aria-live="polite">
        {log.last ? stepText(log.last, cancelRequested) : 'Connecting…'}
      </p>
      <dl className="details training-facts">
        <div>
          <dt>Loss</dt>
          <dd>{lastLoss ? `${short(lastLoss.loss)} at step ${lastLoss.step}` : '–'}</dd>
        </div>
        <div>
          <dt>Learning rate</dt>
          <dd>{log.learningRate ?? t.learningRate}</dd>
        </div>
        <div>
          <dt>Checkpoint</dt>
          <dd>{log.checkpoint ? `step ${log.checkpoint}, in storage` : t.checkpointEvery ? `every ${t.checkpointEvery} steps` : 'none'}</dd>
        </div>
        <div>
          <dt>Time left</dt>
          <dd>{!finished && log.last?.etaSeconds != null ? formatSeconds(log.last.etaSeconds) : '–'}</dd>
        </div>
      </dl>
      {error && (
        <p className="problems" role="alert">
          <strong>{JOB_ERROR_MEANINGS[error.code] ?? error.code}</strong>: {error.message}
        </p>
      )}
      <div className="actions">
        {!finished && (
          <button type="button" onClick={() => void runCancel({ id: t.id })} disabled={cancel.fetching || cancelRequested}>
            Cancel
          </button>
        )}
        <GenerateWithLora training={{ ...t, status: status ?? t.status }} />
        <Link to={`/gallery/${t.id}`}>Details</Link>
      </div>
      <Problems error={cancel.error} />
      <Problems error={log.error} />

      <section aria-labelledby="loss-title">
        <h2 id="loss-title">Loss</h2>
        <LossChart points={log.loss} steps={t.steps} />
      </section>
      <section aria-labelledby="samples-title">
        <h2 id="samples-title">Samples</h2>
        {log.samples.length === 0 && t.outputs.length === 0 && (
          <p className="muted">{t.sampleEvery ? `Every ${t.sampleEvery} steps: the trigger word and the first caption, with the adapter as it stands.` : 'None asked for.'}</p>
        )}
        <ol className="samples">
          {log.samples.map((s) => (
            <li key={s.step}>
              <figure>
                <img src={s.preview} alt={`Samples at step ${s.step}: ${s.prompts.map((p) => `"${p}"`).join(', ')}`} />
                <figcaption>
                  step {s.step}
                  {s.prompts.length > 0 && <span className="muted"> · {s.prompts.join(' | ')}</span>}
                </figcaption>
              </figure>
            </li>
          ))}
        </ol>
        {t.outputs.length > 0 && (
          <div className="images">
            {t.outputs.map((o) => (
              <OutputItem key={o.index} output={o} of={title} fileName={jobFileName(t.id, o)} />
            ))}
          </div>
        )}
      </section>
    </article>
  );
}
