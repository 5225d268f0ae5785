import path from 'node:path';
import type { JobWithMetadata, PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import type { Timing } from '../db/entities/generation.js';
import { type Model, ModelEntity } from '../db/entities/model.js';
import { JobFailure } from '../errors.js';
import { type Attempt, beginAttempt, completeAttempt, failAttempt, LeaseLost, recordEvent, renewLease } from '../jobs/attempt.js';
import { GENERATE_QUEUE, generateJobData } from '../jobs/queue.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Storage } from '../storage/storage.js';
import type { Runner } from './runner.js';
import { attemptPrefix, saveImages } from './save-images.js';

export interface ModelDir {
  dir: string;
  /** Time spent fetching files to this machine (0 when they were already here). */
  fetchMs: number;
  release(): void;
}

export interface JobDeps {
  ds: DataSource;
  metrics: Metrics;
  boss: PgBoss;
  storage: Storage;
  log: Logger;
  /** Local folder holding the model's files, fetched if needed and held until released. */
  modelDir(model: Model, signal: AbortSignal): Promise<ModelDir>;
  leaseSeconds: number;
  softTimeoutMs: number;
  hardTimeoutMs: number;
  cancelGraceMs: number;
}

// Where each step puts overall progress (0..1); GENERATING spreads over its range by step.
const PROGRESS = { LOADING_MODEL: 0.02, ENCODING_PROMPT: 0.08, GENERATING_FROM: 0.1, GENERATING_TO: 0.9, SAVING: 0.92 };

/** Why a run is stopped from outside, as the failure it ends with. */
export const Stop = {
  cancelled: () => new JobFailure('CANCELLED', 'Cancelled by request', false),
  shutdown: () => new JobFailure('WORKER_SHUTDOWN', 'the worker shut down before it finished', true),
};

/** What the worker's loop lends each run. */
export interface RunSlot {
  runner: Runner;
  /** The generations in progress in this process, and what stops each (cancel). */
  running: Map<string, AbortController>;
  /** Aborted when the worker hands its jobs back to the queue at shutdown. */
  handBack: AbortSignal;
  /** Called as the run starts settling, so that the next job is fetched meanwhile. */
  settling(): void;
}

/** Runs one fetched job through its steps, reporting each, and settles it. */
export async function runJob(deps: JobDeps, slot: RunSlot, job: JobWithMetadata<unknown>): Promise<void> {
  const { ds, boss } = deps;
  const parsed = generateJobData.safeParse(job.data);
  if (!parsed.success) {
    deps.log.error({ jobId: job.id, data: job.data }, 'job payload is not a generate job; dropping it');
    await boss.complete(GENERATE_QUEUE, [{ id: job.id, retryCount: job.retryCount }], { dropped: 'invalid payload' });
    return;
  }
  const attempt = await beginAttempt(ds, boss, job, parsed.data.generationId, deps.leaseSeconds);
  if (!attempt) return;
  const id = attempt.generation.id;
  const log = deps.log.child({ generationId: id, attempt: attempt.number, lease: attempt.lease });
  const stop = new AbortController();
  const handBack = () => stop.abort(Stop.shutdown());
  if (slot.handBack.aborted) handBack();
  else slot.handBack.addEventListener('abort', handBack, { once: true });
  slot.running.set(id, stop);
  const keeper = keepLease(deps, attempt, stop, log);
  const started = performance.now();
  const timing: Timing = {};
  try {
    await execute(deps, slot, attempt, stop, timing, log);
  } catch (err) {
    timing.totalMs = performance.now() - started;
    slot.settling();
    await settleFailure(deps, attempt, err, timing, log);
  } finally {
    clearInterval(keeper);
    slot.handBack.removeEventListener('abort', handBack);
    slot.running.delete(id);
  }
}

async function execute(deps: JobDeps, { runner, settling }: RunSlot, a: Attempt, stop: AbortController, timing: Timing, log: Logger) {
  const { ds, boss } = deps;
  const signal = stop.signal;
  signal.throwIfAborted();
  const g = a.generation;
  const started = performance.now();
  log.info('generation started');
  await recordEvent(ds, a, { step: 'LOADING_MODEL', progress: PROGRESS.LOADING_MODEL, message: 'Loading model' });
  const model = await ds.manager.findOneBy(ModelEntity, { id: g.modelId });
  if (!model || model.deletedAt) throw new JobFailure('MODEL_NOT_FOUND', `model ${g.modelId} no longer exists`, false);
  // A LoRA at weight 0 changes nothing: the plain model (and its loaded session) serve.
  const lora = g.loraId && g.loraWeight ? await ds.manager.findOneBy(ModelEntity, { id: g.loraId }) : undefined;
  if (lora === null || lora?.deletedAt) throw new JobFailure('MODEL_NOT_FOUND', `LoRA ${g.loraId} no longer exists`, false);
  const held: ModelDir[] = [];
  try {
    const files = await deps.modelDir(model, signal);
    held.push(files);
    const loraFiles = lora ? await deps.modelDir(lora, signal) : undefined;
    if (loraFiles) held.push(loraFiles);
    // Events are written one after another, in step order, while the runner keeps going. A
    // refused write (lease lost) stops the run.
    let writes = Promise.resolve();
    const write = (fn: () => Promise<void>) =>
      (writes = writes.then(fn).catch((err) => {
        if (!signal.aborted) stop.abort(err);
      }));
    const stepTimes: number[] = [];
    const result = await runner.run(
      {
        jobId: g.id,
        model: { key: model.sha256, pipeline: model.pipeline, dir: files.dir },
        ...(lora && loraFiles ? { lora: { key: lora.sha256, file: path.join(loraFiles.dir, lora.files[0]!.path), weight: g.loraWeight! } } : {}),
        request: {
          prompt: g.prompt,
          negativePrompt: g.negativePrompt,
          steps: g.steps,
          guidanceScale: g.guidanceScale,
          width: g.width,
          height: g.height,
          seed: g.seed,
          numImages: g.numImages,
          scheduler: g.scheduler,
        },
        previews: g.previews,
      },
      {
        onLoaded: ({ loadMs, loraMs, cached, cacheBytes }) => {
          deps.metrics.cacheRequests.inc({ cache: 'session', result: cached ? 'hit' : 'miss' });
          deps.metrics.cacheRequests.inc({ cache: 'model_files', result: files.fetchMs > 0 ? 'miss' : 'hit' });
          deps.metrics.sessionCacheBytes.set(cacheBytes);
          timing.modelLoadMs = files.fetchMs + loadMs;
          if (loraFiles) timing.loraLoadMs = loraFiles.fetchMs + loraMs;
          stepTimes.push(performance.now());
          const message = cached ? 'Model already loaded' : `Model loaded in ${Math.round(loadMs)} ms`;
          write(() => recordEvent(ds, a, { step: 'ENCODING_PROMPT', progress: PROGRESS.ENCODING_PROMPT, message }));
        },
        onStep: ({ index, count, preview }) => {
          stepTimes.push(performance.now());
          write(() =>
            recordEvent(ds, a, {
              step: 'GENERATING',
              progress: PROGRESS.GENERATING_FROM + ((PROGRESS.GENERATING_TO - PROGRESS.GENERATING_FROM) * index) / count,
              stepIndex: index,
              stepCount: count,
              etaSeconds: eta(stepTimes, count - index),
              preview: preview ?? null,
            }),
          );
        },
      },
      { signal, softTimeoutMs: deps.softTimeoutMs, hardTimeoutMs: deps.hardTimeoutMs, cancelGraceMs: deps.cancelGraceMs },
    ).finally(() => writes);
    await writes;
    signal.throwIfAborted();
    timing.encodeMs = result.encodeMs;
    timing.generateMs = result.generateMs;

    await recordEvent(ds, a, { step: 'SAVING', progress: PROGRESS.SAVING, message: `Saving ${result.images.length} image(s)` });
    const saveStart = performance.now();
    const images = await saveImages(deps.storage, g, a.lease, model.name, result.images).catch((err) => {
      throw new JobFailure('STORAGE_ERROR', `could not store the images: ${(err as Error).message}`, true, { cause: err });
    });
    timing.saveMs = performance.now() - saveStart;
    timing.totalMs = performance.now() - started;
    signal.throwIfAborted();
    settling();
    await completeAttempt(ds, boss, a, images, timing);
    deps.metrics.jobs.inc({ outcome: 'completed' });
    deps.metrics.observeTiming(timing);
    log.info({ timing }, 'generation completed');
  } finally {
    held.forEach((h) => h.release());
  }
}

/** Seconds left, from the mean step time so far (the first interval includes prompt encoding). */
function eta(stepTimes: number[], stepsLeft: number): number | null {
  if (stepTimes.length < 2) return null;
  const perStep = (stepTimes.at(-1)! - stepTimes[0]!) / (stepTimes.length - 1) / 1000;
  return Math.round(perStep * stepsLeft * 100) / 100;
}

/** Renews the lease a few times per lease period; stops the run if it is lost or cancelled. */
function keepLease(deps: JobDeps, a: Attempt, stop: AbortController, log: Logger): NodeJS.Timeout {
  return setInterval(
    () =>
      void renewLease(deps.ds, deps.boss, a).then(
        ({ held, cancelRequested }) => {
          if (stop.signal.aborted) return;
          if (!held) {
            log.warn('lease lost: another worker owns this generation now; stopping');
            stop.abort(new LeaseLost('lease lost'));
          } else if (cancelRequested) {
            stop.abort(Stop.cancelled());
          }
        },
        (err) => log.warn({ err }, 'could not renew the lease'),
      ),
    (deps.leaseSeconds * 1000) / 3,
  ).unref();
}

async function settleFailure(deps: JobDeps, a: Attempt, err: unknown, timing: Timing, log: Logger) {
  await deps.storage.deletePrefix(attemptPrefix(a.generation.id, a.lease)).catch((e) => log.warn({ err: e }, 'could not remove partial files'));
  if (err instanceof LeaseLost) {
    deps.metrics.jobs.inc({ outcome: 'lease_lost' });
    log.warn({ reason: err.message }, 'lease lost: this attempt\'s writes are refused');
    return;
  }
  const failure =
    err instanceof JobFailure ? err : new JobFailure('INTERNAL', err instanceof Error ? err.message : String(err), true, { cause: err });
  try {
    const outcome = await failAttempt(deps.ds, deps.boss, a, failure, timing);
    deps.metrics.jobs.inc({ outcome });
    // Kiln's own outcomes (a cancel, a time limit, a shutdown) are told by code and message; only
    // a failure caused by an error carries that error, with its stack.
    const why = failure.cause ? { err: failure.cause } : { reason: failure.message };
    log[outcome === 'cancelled' ? 'info' : 'warn']({ code: failure.code, outcome, ...why }, 'generation attempt ended');
  } catch (e) {
    if (e instanceof LeaseLost) log.warn({ reason: e.message }, 'lease lost while recording the failure; refused');
    else throw e;
  }
}
