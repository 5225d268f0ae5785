import path from 'node:path';
import { JobFailure } from '../../errors.js';
import type { TaskContext, TaskResult } from '../../jobs/kind.js';
import type { ImageParams } from './params.js';
import type { ImageRun, ImageRunResult, LoadedEvent, StepEvent } from './runner-task.js';
import { saveImages } from './save-images.js';

const RUNNER_TASK = new URL('./runner-task.ts', import.meta.url).href;

/** A validated [a, b] as the pipeline takes it (undefined: its default). */
const pair = (v: number[] | null) => (v ? ([v[0], v[1]] as [number, number]) : undefined);

/** One attempt of an image generation, in the worker: models here, inference in the runner, PNGs to storage. */
export async function run(ctx: TaskContext<ImageParams>): Promise<TaskResult> {
  const p = ctx.job.params;
  const { timing } = ctx;
  ctx.report('LOADING_MODEL', { message: 'Loading model' });
  const base = await ctx.model('model');
  if (!base) throw new JobFailure('MODEL_NOT_FOUND', `model ${p.modelId} no longer exists`, false);
  // A LoRA at weight 0 changes nothing: the plain model (and its loaded session) serve.
  const lora = p.loraId && p.loraWeight ? await ctx.model('lora') : undefined;
  if (p.loraId && p.loraWeight && !lora) throw new JobFailure('MODEL_NOT_FOUND', `LoRA ${p.loraId} no longer exists`, false);

  const input: ImageRun = {
    model: { sha256: base.model.sha256, pipeline: base.model.pipeline, dir: base.dir, defaults: base.model.defaults },
    ...(lora ? { lora: { sha256: lora.model.sha256, file: path.join(lora.dir, lora.model.files[0]!.path), weight: p.loraWeight! } } : {}),
    request: { ...p, originalSize: pair(p.originalSize), cropsCoordsTopLeft: pair(p.cropsCoordsTopLeft), targetSize: pair(p.targetSize) },
    previews: p.previews,
  };
  const result = await ctx.inRunner<ImageRunResult>(RUNNER_TASK, input, (name, data) => {
    if (name === 'loaded') {
      const loaded = data as LoadedEvent;
      ctx.metrics.cacheRequests.inc({ cache: 'session', result: loaded.cached ? 'hit' : 'miss' });
      ctx.metrics.cacheRequests.inc({ cache: 'model_files', result: base.fetchMs > 0 ? 'miss' : 'hit' });
      ctx.metrics.sessionCacheBytes.set(loaded.cacheBytes);
      timing.modelLoadMs = base.fetchMs + loaded.loadMs;
      if (lora) timing.loraLoadMs = lora.fetchMs + loaded.loraMs;
      ctx.report('ENCODING_PROMPT', { message: loaded.cached ? 'Model already loaded' : `Model loaded in ${Math.round(loaded.loadMs)} ms` });
    } else if (name === 'step') {
      const step = data as StepEvent;
      ctx.report('GENERATING', { stepIndex: step.index, stepCount: step.count, at: new Date(step.at), ...(step.preview ? { preview: step.preview } : {}) });
    }
  });
  ctx.releaseRunner();
  ctx.signal.throwIfAborted();
  timing.encodeMs = result.encodeMs;
  timing.generateMs = result.generateMs;

  ctx.report('SAVING', { message: `Saving ${result.images.length} image(s)` });
  const saveStart = performance.now();
  const outputs = await saveImages(ctx.storage, ctx.filesPrefix, p, base.model.name, result.images).catch((err) => {
    throw new JobFailure('STORAGE_ERROR', `could not store the images: ${(err as Error).message}`, true, { cause: err });
  });
  timing.saveMs = performance.now() - saveStart;
  return { outputs };
}
