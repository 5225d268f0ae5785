/**
 * The inference runner: a child process of the worker that loads models and runs pipelines, so
 * a job that hangs in native code can be killed without taking the worker down. It talks to
 * its parent over IPC (runner-protocol.ts) and exits when the parent goes away.
 */
import sharp from 'sharp';
import { KilnError } from '../errors.js';
import { SessionCache } from '../models/session-cache.js';
import type { RgbImage } from '../pipelines/pipeline.js';
import { readLoraAdapter } from '../models/lora-adapter.js';
import { loraPatchSet } from '../models/lora-for-model.js';
import { pipelineLoraGraphs } from '../models/lora-targets.js';
import { checkProviders } from '../pipelines/onnx/provider-check.js';
import { loadPipeline, UnknownPipelineError } from '../pipelines/registry.js';
import type { FromRunner, LoraSpec, RunFailure, RunnerSettings, RunSpec, ToRunner } from './runner-protocol.js';

let settings: RunnerSettings | undefined;
/** The providers that passed the check at start: what every session is created with. */
let providers: string[] = ['cpu'];
let cache: SessionCache | undefined;
const running = new Map<string, AbortController>();

const send = (message: FromRunner) => void process.send!(message);

process.on('message', (message: ToRunner) => {
  switch (message.type) {
    case 'init':
      settings = message.settings;
      cache = new SessionCache({ budgetBytes: settings.sessionCacheBytes, keepAliveMs: settings.keepAliveMs });
      void checkProviders(settings.executionProviders).then((check) => {
        providers = check.usable;
        send({ type: 'ready', providers: check });
      });
      break;
    case 'run':
      void run(message.spec);
      break;
    case 'cancel':
      running.get(message.jobId)?.abort(new CancelledError());
      break;
  }
});
process.on('disconnect', () => process.exit(0));

class CancelledError extends Error {
  override name = 'CancelledError';
}
class ModelLoadError extends Error {}
class LoraLoadError extends Error {}

async function loraPatch(model: RunSpec['model'], lora: LoraSpec) {
  const targets = pipelineLoraGraphs[model.pipeline];
  if (!targets) throw new LoraLoadError(`the ${model.pipeline} pipeline does not take LoRA adapters`);
  const t0 = performance.now();
  const adapter = await readLoraAdapter(lora.file).catch((err) => {
    throw new LoraLoadError(`could not read the LoRA: ${(err as Error).message}`, { cause: err });
  });
  const set = await loraPatchSet(adapter, lora.weight, targets, model.dir).catch((err) => {
    throw new LoraLoadError(`could not apply the LoRA: ${(err as Error).message}`, { cause: err });
  });
  return { set, readMs: performance.now() - t0 };
}

async function run(spec: RunSpec) {
  const abort = new AbortController();
  running.set(spec.jobId, abort);
  let release: (() => Promise<void>) | undefined;
  try {
    const t0 = performance.now();
    let loraMs = 0;
    // Each (model, LoRA, weight) has its own session, built from the base weights: LoRAs never stack.
    const key = spec.lora ? `${spec.model.key}+${spec.lora.key}@${spec.lora.weight}` : spec.model.key;
    const held = await cache!.acquire(key, async () => {
      const patch = spec.lora ? await loraPatch(spec.model, spec.lora) : undefined;
      const pipeline = await loadPipeline(spec.model.pipeline, spec.model.dir, {
        executionProviders: providers,
        ...(patch ? { graphPatches: patch.set.patches } : {}),
      }).catch((err) => {
        if (err instanceof KilnError && patch) throw new LoraLoadError(`could not apply the LoRA: ${err.message}`, { cause: err });
        throw new ModelLoadError(`could not load model: ${(err as Error).message}`, { cause: err });
      });
      if (patch) loraMs = patch.readMs + patch.set.report().mergeMs;
      return pipeline;
    });
    release = held.release;
    send({ type: 'loaded', jobId: spec.jobId, loadMs: performance.now() - t0 - loraMs, loraMs, cached: held.cached, cacheBytes: cache!.sizeBytes });
    abort.signal.throwIfAborted();

    let lastPreview = 0;
    // Step messages go out in order; one waiting for its preview's PNG holds back the next.
    let outbox = Promise.resolve();
    const result = await held.pipeline.generate(spec.request, {
      signal: abort.signal,
      onStep: ({ index, count, preview }) => {
        const now = performance.now();
        const image = spec.previews && (now - lastPreview >= settings!.previewIntervalMs || index === count) ? preview() : undefined;
        if (image) lastPreview = now;
        outbox = outbox.then(async () =>
          send({ type: 'step', jobId: spec.jobId, index, count, ...(image ? { preview: await toDataUrl(image) } : {}) }),
        );
      },
    });
    await outbox;
    send({ type: 'done', jobId: spec.jobId, images: result.images, encodeMs: result.encodeMs, generateMs: result.generateMs });
  } catch (err) {
    send({ type: 'failed', jobId: spec.jobId, error: describe(err) });
  } finally {
    running.delete(spec.jobId);
    await release?.();
  }
}

function describe(err: unknown): RunFailure {
  const e = err instanceof Error ? err : new Error(String(err));
  if (e instanceof CancelledError) return { code: 'CANCELLED', message: 'cancelled', retryable: false };
  if (e instanceof ModelLoadError || e instanceof UnknownPipelineError) return { code: 'MODEL_LOAD_FAILED', message: e.message, retryable: false, stack: e.stack };
  if (e instanceof LoraLoadError) return { code: 'LORA_LOAD_FAILED', message: e.message, retryable: false, stack: e.stack };
  // The pipeline refused the request itself (a size or scheduler the model cannot do): trying
  // again would be refused again.
  if (e instanceof KilnError) return { code: 'INVALID_REQUEST', message: e.message, retryable: false };
  return { code: 'INFERENCE_FAILED', message: e.message, retryable: true, stack: e.stack };
}

async function toDataUrl(image: RgbImage): Promise<string> {
  const png = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}
