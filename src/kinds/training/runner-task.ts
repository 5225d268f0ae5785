/** A training, in the runner process: the trainer, its progress as events, samples as preview strips. */
import sharp from 'sharp';
import type { Config } from '../../config.js';
import { JobFailure } from '../../errors.js';
import type { RgbImage } from '../../pipelines/pipeline.js';
import { hostTrainers } from '../../trainers/registry.js';
import type { TrainerName, TrainingCheckpoint, TrainingProgress, TrainingSpec } from '../../trainers/trainer.js';
import type { RunnerContext } from '../../worker/runner-protocol.js';

export interface TrainingRun {
  trainer: TrainerName;
  /** This host's external trainer commands (the runner reads no settings of its own). */
  commands: Config['trainers'];
  spec: TrainingSpec;
}

export interface TrainingRunResult {
  adapterPath: string;
  metadata: Record<string, string>;
  resumedFromStep: number;
  trainMs: number;
}

export type StepEvent = TrainingProgress & { at: number };
export type CheckpointEvent = TrainingCheckpoint;
export interface SampleEvent {
  step: number;
  prompts: string[];
  /** The samples side by side, each at most PREVIEW_SIDE on a side, as a PNG data URL. */
  preview: string;
}

/**
 * How long a stopped external tool gets between SIGINT and SIGKILL: less than the 10 s the worker
 * gives a cancelled runner before killing it, so the tool's group is gone before its parent is.
 */
const TOOL_STOP_GRACE_MS = 7000;
const PREVIEW_SIDE = 128;

export async function runInRunner(input: TrainingRun, ctx: RunnerContext): Promise<TrainingRunResult> {
  const trainer = hostTrainers(input.commands, { graceMs: TOOL_STOP_GRACE_MS }).find((t) => t.name === input.trainer);
  if (!trainer) throw new JobFailure('TRAINER_UNAVAILABLE', `this worker has no ${input.trainer} trainer`, true);
  const started = performance.now();
  const result = await trainer.train(input.spec, {
    signal: ctx.signal,
    onStep: (p) => ctx.emit('step', { ...p, at: Date.now() } satisfies StepEvent),
    onCheckpoint: (c) => ctx.emit('checkpoint', c satisfies CheckpointEvent),
    onSample: async (s) => ctx.emit('sample', { step: s.step, prompts: s.prompts, preview: await previewStrip(s.images) } satisfies SampleEvent),
  });
  return { adapterPath: result.adapterPath, metadata: result.metadata, resumedFromStep: result.resumedFromStep, trainMs: performance.now() - started };
}

/** The sample images in a row, each scaled to fit PREVIEW_SIDE² (small ones scaled up, pixels kept sharp). */
async function previewStrip(images: RgbImage[]): Promise<string> {
  const tiles = await Promise.all(
    images.map(async (img) => {
      const scale = PREVIEW_SIDE / Math.max(img.width, img.height);
      const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
        .resize({ width: Math.max(1, Math.round(img.width * scale)), height: Math.max(1, Math.round(img.height * scale)), kernel: scale > 1 ? 'nearest' : 'lanczos3' })
        .png()
        .toBuffer({ resolveWithObject: true });
      return { data, width: info.width, height: info.height };
    }),
  );
  const width = tiles.reduce((w, t) => w + t.width, 0);
  const height = Math.max(...tiles.map((t) => t.height));
  const lefts = tiles.map((_, i) => tiles.slice(0, i).reduce((x, t) => x + t.width, 0));
  const strip = await sharp({ create: { width, height, channels: 3, background: '#000000' } })
    .composite(tiles.map((t, i) => ({ input: t.data, left: lefts[i]!, top: 0 })))
    .png()
    .toBuffer();
  return `data:image/png;base64,${strip.toString('base64')}`;
}
