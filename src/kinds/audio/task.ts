import { JobFailure } from '../../errors.js';
import type { TaskContext, TaskResult } from '../../jobs/kind.js';
import type { AudioParams } from './params.js';
import type { AudioRun, AudioRunResult, FramesEvent, LoadedEvent } from './runner-task.js';
import { saveAudio } from './save-audio.js';

const RUNNER_TASK = new URL('./runner-task.ts', import.meta.url).href;

/** One attempt of a music generation, in the worker: the model here, inference in the runner, WAVs to storage. */
export async function run(ctx: TaskContext<AudioParams>): Promise<TaskResult> {
  const p = ctx.job.params;
  const { timing } = ctx;
  ctx.report('LOADING_MODEL', { message: 'Loading model' });
  const held = await ctx.model('model');
  if (!held) throw new JobFailure('MODEL_NOT_FOUND', `model ${p.modelId} no longer exists`, false);

  const input: AudioRun = {
    model: { sha256: held.model.sha256, pipeline: held.model.pipeline, dir: held.dir },
    request: { prompt: p.prompt, durationSeconds: p.durationSeconds, guidanceScale: p.guidanceScale, seed: p.seed, topK: p.topK, temperature: p.temperature },
  };
  const result = await ctx.inRunner<AudioRunResult>(RUNNER_TASK, input, (name, data) => {
    if (name === 'loaded') {
      const loaded = data as LoadedEvent;
      ctx.metrics.cacheRequests.inc({ cache: 'session', result: loaded.cached ? 'hit' : 'miss' });
      ctx.metrics.cacheRequests.inc({ cache: 'model_files', result: held.fetchMs > 0 ? 'miss' : 'hit' });
      ctx.metrics.sessionCacheBytes.set(loaded.cacheBytes);
      timing.modelLoadMs = held.fetchMs + loaded.loadMs;
      ctx.report('ENCODING_PROMPT', { message: loaded.cached ? 'Model already loaded' : `Model loaded in ${Math.round(loaded.loadMs)} ms` });
    } else if (name === 'frames') {
      const frames = data as FramesEvent;
      ctx.report('GENERATING', { stepIndex: frames.index, stepCount: frames.count, message: `Frame ${frames.index} of ${frames.count}`, at: new Date(frames.at) });
    }
  });
  ctx.releaseRunner();
  ctx.signal.throwIfAborted();
  timing.encodeMs = result.encodeMs;
  timing.generateMs = result.generateMs;

  ctx.report('SAVING', { message: `Saving ${result.outputs.length} WAV file(s)` });
  const saveStart = performance.now();
  const outputs = await saveAudio(ctx.storage, ctx.filesPrefix, p, held.model.name, result.outputs).catch((err) => {
    throw new JobFailure('STORAGE_ERROR', `could not store the audio: ${(err as Error).message}`, true, { cause: err });
  });
  timing.saveMs = performance.now() - saveStart;
  return { outputs };
}
