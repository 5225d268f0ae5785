/** An image generation's inference, in the runner process: the loaded session, LoRA merge, previews. */
import sharp from 'sharp';
import { JobFailure, KilnError } from '../../errors.js';
import { readLoraAdapter } from '../../models/lora-adapter.js';
import { loraPatchSet } from '../../models/lora-for-model.js';
import { pipelineLoraGraphs } from '../../models/lora-targets.js';
import { loadPipeline } from '../../pipelines/catalog.js';
import type { GeneratedImage, GenerateRequest, LoadedPipeline, RgbImage } from '../../pipelines/pipeline.js';
import type { RunnerContext } from '../../worker/runner-protocol.js';
import { imageSessionKey } from './session-key.js';

export interface ImageRun {
  model: { sha256: string; pipeline: string; dir: string; defaults: Record<string, number | string> };
  lora?: { sha256: string; file: string; weight: number };
  request: GenerateRequest;
  previews: boolean;
}

export interface ImageRunResult {
  images: GeneratedImage[];
  encodeMs: number;
  generateMs: number;
}

export interface LoadedEvent {
  loadMs: number;
  loraMs: number;
  cached: boolean;
  cacheBytes: number;
}

export interface StepEvent {
  index: number;
  count: number;
  /** Epoch milliseconds, when the step ended. */
  at: number;
  preview?: string;
}

export async function runInRunner(input: ImageRun, ctx: RunnerContext): Promise<ImageRunResult> {
  const t0 = performance.now();
  let loraMs = 0;
  const held = await ctx.cache.acquire(imageSessionKey(input.model.sha256, input.lora), async () => {
    const patch = input.lora ? await loraPatch(input.model, input.lora) : undefined;
    const pipeline = await loadPipeline(input.model.pipeline, input.model.dir, {
      executionProviders: ctx.providers,
      ...(patch ? { graphPatches: patch.set.patches } : {}),
    }).catch((err: unknown) => {
      // Another worker may have the room this one lacks.
      if (err instanceof KilnError && err.code === 'INSUFFICIENT_MEMORY') throw new JobFailure('INSUFFICIENT_MEMORY', err.message, true, { cause: err });
      if (err instanceof KilnError && patch) throw new JobFailure('LORA_LOAD_FAILED', `could not apply the LoRA: ${err.message}`, false, { cause: err });
      throw new JobFailure('MODEL_LOAD_FAILED', `could not load model: ${(err as Error).message}`, false, { cause: err });
    });
    if (patch) loraMs = patch.readMs + patch.set.report().mergeMs;
    return pipeline;
  });
  try {
    ctx.emit('loaded', { loadMs: performance.now() - t0 - loraMs, loraMs, cached: held.cached, cacheBytes: ctx.cache.sizeBytes } satisfies LoadedEvent);
    ctx.signal.throwIfAborted();
    return await generate(held.pipeline, input, ctx);
  } finally {
    await held.release();
  }
}

async function generate(pipeline: LoadedPipeline, input: ImageRun, ctx: RunnerContext): Promise<ImageRunResult> {
  let lastPreview = 0;
  // Step messages go out in order; one waiting for its preview's PNG holds back the next.
  let outbox = Promise.resolve();
  const result = await pipeline.generate(input.request, {
    signal: ctx.signal,
    onStep: ({ index, count, preview }) => {
      const now = performance.now();
      const at = Date.now();
      const image = input.previews && (now - lastPreview >= ctx.previewIntervalMs || index === count) ? preview() : undefined;
      if (image) lastPreview = now;
      outbox = outbox.then(async () => ctx.emit('step', { index, count, at, ...(image ? { preview: await toDataUrl(image) } : {}) } satisfies StepEvent));
    },
  });
  await outbox;
  return { images: result.images, encodeMs: result.encodeMs, generateMs: result.generateMs };
}

/** The adapter's deltas for each graph of the model it changes, merged when the session is made. */
async function loraPatch(model: ImageRun['model'], lora: NonNullable<ImageRun['lora']>) {
  const targets = pipelineLoraGraphs[model.pipeline];
  if (!targets) throw new JobFailure('LORA_LOAD_FAILED', `the ${model.pipeline} pipeline does not take LoRA adapters`, false);
  const t0 = performance.now();
  const adapter = await readLoraAdapter(lora.file).catch((err: unknown) => {
    throw new JobFailure('LORA_LOAD_FAILED', `could not read the LoRA: ${(err as Error).message}`, false, { cause: err });
  });
  const set = await loraPatchSet(adapter, lora.weight, targets, model.dir).catch((err: unknown) => {
    throw new JobFailure('LORA_LOAD_FAILED', `could not apply the LoRA: ${(err as Error).message}`, false, { cause: err });
  });
  return { set, readMs: performance.now() - t0 };
}

async function toDataUrl(image: RgbImage): Promise<string> {
  const png = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}
