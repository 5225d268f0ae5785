import { useEffect, useRef, useState } from 'react';
import { type CombinedError, useClient } from 'urql';
import { type JobEvent, TERMINAL } from '../api/job-operations';
import { TRAINING_EVENTS, type TrainingEventsData } from '../api/training-operations';
import { stepText } from '../generate/job-card';
import { type Training, trainingKind } from '../kinds/training-kind';
import { Link } from '../router';
import { formatDate } from '../ui/format';
import { Problems } from '../ui/problems';
import { ProgressBar } from '../ui/progress-bar';
import { StatusBadge } from '../ui/status-badge';

/** Re-reads of the list after events that change it, at most this often. */
const REFRESH_MS = 500;

/** The newest trainings, live from generationEvents(kind: "training"); a new or finished one re-reads the list. */
export function TrainingList({ trainings, onChanged }: { trainings: Training[]; onChanged: () => void }) {
  const client = useClient();
  const [live, setLive] = useState<Map<string, JobEvent>>(new Map());
  const [streamError, setStreamError] = useState<CombinedError | undefined>();
  const known = useRef(new Set<string>());
  known.current = new Set(trainings.map((t) => t.id));
  const changed = useRef(onChanged);
  changed.current = onChanged;

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const refreshSoon = () => {
      timer ??= setTimeout(() => {
        timer = undefined;
        changed.current();
      }, REFRESH_MS);
    };
    const { unsubscribe } = client.subscription<TrainingEventsData>(TRAINING_EVENTS, {}).subscribe((result) => {
      setStreamError(result.error);
      const e = result.data?.generationEvents;
      if (!e) return;
      setLive((m) => new Map(m).set(e.jobId, e));
      if (!known.current.has(e.jobId) || TERMINAL.has(e.status)) refreshSoon();
    });
    return () => {
      unsubscribe();
      clearTimeout(timer);
    };
  }, [client]);

  return (
    <>
      <Problems error={streamError} />
      {trainings.length === 0 && <p className="muted">No trainings yet.</p>}
      <ul className="queue-list">
        {trainings.map((t) => {
          const e = live.get(t.id);
          const status = e?.status ?? t.status;
          const title = trainingKind.title(t);
          return (
            <li key={t.id} className="card queue-row" data-job-id={t.id} aria-label={title}>
              <div className="queue-row-head">
                <StatusBadge status={status} />
                <Link to={`/train/${t.id}`} className="job-prompt">
                  {title}
                </Link>
                <span className="muted">{trainingKind.summary(t)}</span>
              </div>
              <ProgressBar value={status === 'COMPLETED' ? 1 : (e?.progress ?? t.progress)} label={`Progress of "${title}"`} />
              <span className="muted">{e ? stepText(e) : TERMINAL.has(status) ? `finished ${formatDate(t.completedAt)}` : stepText({ step: t.currentStep, stepIndex: null, stepCount: null, etaSeconds: null })}</span>
            </li>
          );
        })}
      </ul>
    </>
  );
}
