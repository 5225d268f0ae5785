/** A music generation's inference, in the runner process: the loaded model, frames progress. */
import { JobFailure, KilnError } from '../../errors.js';
import type { AudioGenerateRequest, LoadedAudioPipeline } from '../../pipelines/audio-pipeline.js';
import { loadAudioPipeline } from '../../pipelines/catalog.js';
import type { RunnerContext } from '../../worker/runner-protocol.js';
import { audioSessionKey } from './session-key.js';

export interface AudioRun {
  model: { sha256: string; pipeline: string; dir: string };
  request: AudioGenerateRequest;
}

export interface RunAudio {
  /** Samples in [-1, 1], channels interleaved. */
  samples: Float32Array;
  sampleRate: number;
  channels: number;
  seed: number;
}

export interface AudioRunResult {
  outputs: RunAudio[];
  encodeMs: number;
  generateMs: number;
}

export interface LoadedEvent {
  loadMs: number;
  cached: boolean;
  cacheBytes: number;
}

export interface FramesEvent {
  /** Frames generated so far, of `count`. */
  index: number;
  count: number;
  /** Epoch milliseconds, when the decoder step that finished them ended. */
  at: number;
}

export async function runInRunner(input: AudioRun, ctx: RunnerContext): Promise<AudioRunResult> {
  const t0 = performance.now();
  const held = await ctx.cache.acquire(audioSessionKey(input.model.sha256), () =>
    loadAudioPipeline(input.model.pipeline, input.model.dir, { executionProviders: ctx.providers }).catch((err: unknown) => {
      // Another worker may have the room this one lacks.
      if (err instanceof KilnError && err.code === 'INSUFFICIENT_MEMORY') throw new JobFailure('INSUFFICIENT_MEMORY', err.message, true, { cause: err });
      throw new JobFailure('MODEL_LOAD_FAILED', `could not load model: ${(err as Error).message}`, false, { cause: err });
    }),
  );
  try {
    ctx.emit('loaded', { loadMs: performance.now() - t0, cached: held.cached, cacheBytes: ctx.cache.sizeBytes } satisfies LoadedEvent);
    ctx.signal.throwIfAborted();
    return await generate(held.pipeline, input.request, ctx);
  } finally {
    await held.release();
  }
}

/**
 * Runs the generation, reporting frames done at most once per preview interval and always the
 * last; the run's signal reaches every decoder step, so a cancel stops it at the next one (the
 * pipeline frees its KV cache as it stops).
 */
async function generate(pipeline: LoadedAudioPipeline, request: AudioGenerateRequest, ctx: RunnerContext): Promise<AudioRunResult> {
  let lastAt = -Infinity;
  let lastIndex = 0;
  const result = await pipeline.generate(request, {
    signal: ctx.signal,
    onStep: ({ index, count }) => {
      // MusicGen's first steps complete no frame yet (the delay pattern): nothing new to say.
      if (index <= lastIndex) return;
      const now = performance.now();
      if (index < count && now - lastAt < ctx.previewIntervalMs) return;
      lastAt = now;
      lastIndex = index;
      ctx.emit('frames', { index, count, at: Date.now() } satisfies FramesEvent);
    },
  });
  return {
    outputs: result.outputs.map(({ samples, sampleRate, channels, seed }) => ({ samples, sampleRate, channels, seed })),
    encodeMs: result.encodeMs,
    generateMs: result.generateMs,
  };
}
