import { useEffect, useState } from 'react';
import { type CombinedError, useClient } from 'urql';
import { TRAINING_PROGRESS, type TrainingEvent, type TrainingProgressData } from '../api/training-operations';

export interface LossPoint {
  step: number;
  loss: number;
}

/** One set of samples: the preview image (the prompts' pictures side by side) at a step. */
export interface Sample {
  step: number;
  preview: string;
  prompts: string[];
}

/** What a training's events have said so far. */
export interface TrainingLog {
  last: TrainingEvent | undefined;
  /** By step; a step trained again after a resume counts once, as its latest run. */
  loss: LossPoint[];
  learningRate: number | undefined;
  samples: Sample[];
  /** The step of the newest checkpoint in storage. */
  checkpoint: number | undefined;
  error: CombinedError | undefined;
}

/** Re-renders at most this often: a replay brings every stored event at once. */
const PUBLISH_MS = 80;

const empty = (): TrainingLog => ({ last: undefined, loss: [], learningRate: undefined, samples: [], checkpoint: undefined, error: undefined });

/** Puts `item` in its place by step in a sorted list, replacing one of the same step. */
function upsert<T extends { step: number }>(list: T[], item: T) {
  if (!list.length || list[list.length - 1]!.step < item.step) return void list.push(item);
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.step < item.step) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, list[lo]?.step === item.step ? 1 : 0, item);
}

function add(log: TrainingLog, e: TrainingEvent) {
  log.last = e;
  const d = e.detail;
  if (e.step !== 'TRAINING' || !d) return;
  if (typeof d.loss === 'number' && e.stepIndex !== null) upsert(log.loss, { step: e.stepIndex, loss: d.loss });
  if (typeof d.learningRate === 'number') log.learningRate = d.learningRate;
  if (typeof d.sampleStep === 'number' && e.preview) upsert(log.samples, { step: d.sampleStep, preview: e.preview, prompts: d.prompts ?? [] });
  if (typeof d.checkpointStep === 'number') log.checkpoint = Math.max(log.checkpoint ?? 0, d.checkpointStep);
}

/**
 * A training's events from generationProgress, which replays the stored ones and streams the
 * rest: after a reload the curve and the samples are back, then grow live. Replays (after a
 * reconnect, say) change nothing, since every point and sample is kept by its step.
 */
export function useTrainingLog(id: string): TrainingLog {
  const client = useClient();
  const [log, setLog] = useState<TrainingLog>(empty);
  useEffect(() => {
    const acc = empty();
    setLog(empty());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const publish = () => {
      timer = undefined;
      setLog({ ...acc, loss: acc.loss.slice(), samples: acc.samples.slice() });
    };
    const { unsubscribe } = client.subscription<TrainingProgressData>(TRAINING_PROGRESS, { id }).subscribe((result) => {
      acc.error = result.error;
      if (result.data) add(acc, result.data.generationProgress);
      timer ??= setTimeout(publish, PUBLISH_MS);
    });
    return () => {
      unsubscribe();
      clearTimeout(timer);
    };
  }, [client, id]);
  return log;
}
