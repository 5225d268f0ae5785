import type { JobWithMetadata, PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import type { Config } from '../config.js';
import type { Timing } from '../db/entities/job.js';
import { type Model, ModelEntity } from '../db/entities/model.js';
import { JobFailure } from '../errors.js';
import { type Attempt, beginAttempt, completeAttempt, failAttempt, LeaseLost, recordEvent, renewLease } from '../jobs/attempt.js';
import type { HeldModel, KindDefinition, TaskContext, Timeouts } from '../jobs/kind.js';
import { jobData } from '../jobs/queue.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { attemptKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import type { Runner } from './runner.js';
import { StepReporter } from './step-reporter.js';

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
  kinds: readonly KindDefinition[];
  /** Local folder holding the model's files, fetched if needed and held until released. */
  modelDir(model: Model, signal: AbortSignal): Promise<ModelDir>;
  leaseSeconds: number;
  /** Time limits of an attempt, unless its kind has its own. */
  timeouts: Timeouts;
  cancelGraceMs: number;
  /** The process's settings, lent to tasks. */
  config: Config;
}

/** Why a run is stopped from outside, as the failure it ends with. */
export const Stop = {
  cancelled: () => new JobFailure('CANCELLED', 'Cancelled by request', false),
  shutdown: () => new JobFailure('WORKER_SHUTDOWN', 'the worker shut down before it finished', true),
};

/** What the worker's loop lends each run. */
export interface RunSlot {
  runner: Runner;
  /** The jobs in progress in this process, and what stops each (cancel). */
  running: Map<string, AbortController>;
  /** Aborted when the worker hands its jobs back to the queue at shutdown. */
  handBack: AbortSignal;
  /** Called as the run starts settling, so that the next job is fetched meanwhile. */
  settling(): void;
  /** Called once the job's models are known, for the worker's report of what it has loaded. */
  usesModels(ids: string[]): void;
}

/** Runs one fetched job through its kind's task, reporting each step, and settles it. */
export async function runJob(deps: JobDeps, slot: RunSlot, fetched: JobWithMetadata<unknown>): Promise<void> {
  const { ds, boss } = deps;
  const parsed = jobData.safeParse(fetched.data);
  if (!parsed.success) {
    deps.log.error({ jobId: fetched.id, data: fetched.data }, 'job payload is not one of Kiln\'s; dropping it');
    await boss.complete(fetched.name, [{ id: fetched.id, retryCount: fetched.retryCount }], { dropped: 'invalid payload' });
    return;
  }
  const attempt = await beginAttempt(ds, boss, fetched, parsed.data.jobId, deps.leaseSeconds);
  if (!attempt) return;
  const id = attempt.job.id;
  const log = deps.log.child({ jobId: id, kind: attempt.job.kind, attempt: attempt.number, lease: attempt.lease });
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

async function execute(deps: JobDeps, slot: RunSlot, a: Attempt, stop: AbortController, timing: Timing, log: Logger) {
  const { ds, boss } = deps;
  const signal = stop.signal;
  signal.throwIfAborted();
  const kind = deps.kinds.find((k) => k.name === a.job.kind);
  if (!kind) throw new JobFailure('UNKNOWN_KIND', `this worker does not run ${a.job.kind} jobs`, true);
  const params = kind.params.safeParse(a.job.params);
  if (!params.success) throw new JobFailure('INVALID_PARAMETERS', `the job's parameters are not those of a ${kind.name} job: ${params.error.issues[0]?.message}`, false);
  const started = performance.now();
  log.info('job started');

  // Steps are written one after another, in order, while the task goes on. A refused write
  // (the lease was lost) stops the run.
  let writes = Promise.resolve();
  const reporter = new StepReporter(kind.steps);
  const held: ModelDir[] = [];
  const limits = kind.timeouts?.(deps.timeouts, deps.config) ?? deps.timeouts;
  const ctx: TaskContext<Record<string, unknown>> = {
    job: { ...a.job, params: params.data },
    attempt: a.number,
    signal,
    log,
    metrics: deps.metrics,
    timing,
    storage: deps.storage,
    config: deps.config,
    filesPrefix: attemptKey(a.job.id, a.lease),
    report(step, report) {
      const event = reporter.event(step, report);
      writes = writes.then(() => recordEvent(ds, a, event)).catch((err) => {
        if (!signal.aborted) stop.abort(err);
      });
    },
    reported: () => writes,
    model: async (role) => {
      const model = await jobModel(ds, a.job.id, role);
      if (!model) return undefined;
      const files = await deps.modelDir(model, signal);
      held.push(files);
      slot.usesModels([model.id]);
      return { model, dir: files.dir, fetchMs: files.fetchMs } satisfies HeldModel;
    },
    inRunner: async <T>(module: string, input: unknown, onEvent: (name: string, data: unknown) => void) =>
      (await slot.runner.run({ jobId: a.job.id, module, input }, onEvent, {
        signal,
        softTimeoutMs: limits.softTimeoutSeconds * 1000,
        hardTimeoutMs: limits.hardTimeoutSeconds * 1000,
        cancelGraceMs: deps.cancelGraceMs,
      })) as T,
  };
  try {
    const task = await kind.task();
    const result = await task.run(ctx);
    await writes;
    signal.throwIfAborted();
    timing.totalMs = performance.now() - started;
    slot.settling();
    await completeAttempt(ds, boss, a, result, timing);
    deps.metrics.jobs.inc({ kind: kind.name, outcome: 'completed' });
    deps.metrics.observeTiming(kind.name, timing);
    log.info({ timing }, 'job completed');
  } finally {
    await writes;
    held.forEach((h) => h.release());
  }
}

/** The model a job uses in a role; a model deleted since the job was queued fails it for good. */
async function jobModel(ds: DataSource, jobId: string, role: string): Promise<Model | undefined> {
  const model = await ds.manager
    .createQueryBuilder(ModelEntity, 'm')
    .innerJoin('job_models', 'jm', 'jm.model_id = m.id')
    .where('jm.job_id = :jobId AND jm.role = :role', { jobId, role })
    .getOne();
  if (model?.deletedAt) throw new JobFailure('MODEL_NOT_FOUND', `model ${model.id} (${role}) no longer exists`, false);
  return model ?? undefined;
}

/** Renews the lease a few times per lease period; stops the run if it is lost or cancelled. */
function keepLease(deps: JobDeps, a: Attempt, stop: AbortController, log: Logger): NodeJS.Timeout {
  return setInterval(
    () =>
      void renewLease(deps.ds, deps.boss, a).then(
        ({ held, cancelRequested }) => {
          if (stop.signal.aborted) return;
          if (!held) {
            log.warn('lease lost: another worker owns this job now; stopping');
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
  await deps.storage.deletePrefix(attemptKey(a.job.id, a.lease)).catch((e) => log.warn({ err: e }, 'could not remove partial files'));
  if (err instanceof LeaseLost) {
    deps.metrics.jobs.inc({ kind: a.job.kind, outcome: 'lease_lost' });
    log.warn({ reason: err.message }, 'lease lost: this attempt\'s writes are refused');
    return;
  }
  const failure =
    err instanceof JobFailure ? err : new JobFailure('INTERNAL', err instanceof Error ? err.message : String(err), true, { cause: err });
  try {
    const outcome = await failAttempt(deps.ds, deps.boss, a, failure, timing);
    deps.metrics.jobs.inc({ kind: a.job.kind, outcome });
    // Kiln's own outcomes (a cancel, a time limit, a shutdown) are told by code and message; only
    // a failure caused by an error carries that error, with its stack.
    const why = failure.cause ? { err: failure.cause } : { reason: failure.message };
    log[outcome === 'cancelled' ? 'info' : 'warn']({ code: failure.code, outcome, ...why }, 'job attempt ended');
  } catch (e) {
    if (e instanceof LeaseLost) log.warn({ reason: e.message }, 'lease lost while recording the failure; refused');
    else throw e;
  }
}
