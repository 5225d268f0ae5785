import { setTimeout as delay } from 'node:timers/promises';
import type { JobWithMetadata, PgBoss } from 'pg-boss';
import type { DataSource, EntityManager } from 'typeorm';
import type { Config } from '../config.js';
import type { Timing } from '../db/entities/job.js';
import { type Model, ModelEntity } from '../db/entities/model.js';
import { isDatabaseUnavailable } from '../db/outage.js';
import { JobFailure } from '../errors.js';
import { type Attempt, beginAttempt, completeAttempt, failAttempt, LeaseLost, renewLease, type StepEvent } from '../jobs/attempt.js';
import type { HeldModel, KindDefinition, TaskContext, TaskResult, Timeouts } from '../jobs/kind.js';
import { inTransaction, jobData } from '../jobs/queue.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { attemptKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import type { Runner } from './runner.js';
import { EventWriter } from './event-writer.js';
import { StepReporter } from './step-reporter.js';

export interface ModelDir {
  dir: string;
  /** Time spent fetching files to this machine (0 when they were already here). */
  fetchMs: number;
  release(): void;
}

export interface JobDeps {
  /** The process's settings, lent to tasks. */
  config: Config;
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
  /**
   * Queues the recording of a run's outcome after the slot's earlier ones (so they commit in
   * order), to go on while the slot's next job starts: the runner is free once a task is done.
   */
  settle(record: () => Promise<void>): void;
  /** Called once the job's models are known, for the worker's report of what it has loaded. */
  usesModels(ids: string[]): void;
}

/**
 * Fetched jobs' payloads checked and the jobs taken (see beginAttempt), in the fetching
 * transaction `em`; a payload that is not one of Kiln's is dropped from the queue.
 */
export async function takeJob(deps: JobDeps, em: EntityManager, fetched: JobWithMetadata<unknown>): Promise<Taken> {
  const parsed = jobData.safeParse(fetched.data);
  if (!parsed.success) {
    deps.log.error({ jobId: fetched.id, data: fetched.data }, 'job payload is not one of Kiln\'s; dropping it');
    await deps.boss.complete(fetched.name, [{ id: fetched.id, retryCount: fetched.retryCount }], { dropped: 'invalid payload' }, { db: inTransaction(em) });
    return {};
  }
  const { jobId } = parsed.data;
  const { attempt, lostLeases } = await beginAttempt(em, deps.boss, fetched, jobId, deps.leaseSeconds);
  return { attempt, ...(lostLeases.length ? { lost: { jobId, leases: lostLeases } } : {}) };
}

/** A fetched job as taken: its attempt (none when there is nothing to run), and the runs of it found dead. */
export interface Taken {
  attempt?: Attempt | undefined;
  /** For removeLostFiles, once the taking transaction has committed. */
  lost?: { jobId: string; leases: number[] };
}

/**
 * Runs a taken job through its kind's task, reporting each step, and returns once the task is
 * done; its outcome (COMPLETED with its outputs, or the failure) is recorded through
 * `slot.settle`, with the lease kept until that is committed.
 */
export async function runJob(deps: JobDeps, slot: RunSlot, attempt: Attempt): Promise<void> {
  const id = attempt.job.id;
  const log = deps.log.child({ jobId: id, kind: attempt.job.kind, attempt: attempt.number, lease: attempt.lease });
  const stop = new AbortController();
  const handBack = () => stop.abort(Stop.shutdown());
  if (slot.handBack.aborted) handBack();
  else slot.handBack.addEventListener('abort', handBack, { once: true });
  slot.running.set(id, stop);
  const stopKeeping = keepLease(deps, attempt, stop, log);
  const started = performance.now();
  const timing: Timing = {};
  // The slot goes on to its next job once the task is done, or has let the runner go before that.
  let releaseRunner!: () => void;
  const runnerReleased = new Promise<void>((resolve) => (releaseRunner = resolve));
  const outcome = execute(deps, slot, attempt, stop, timing, log, releaseRunner);
  await Promise.race([outcome.then(releaseRunner, releaseRunner), runnerReleased]);
  slot.settle(async () => {
    try {
      await outcome.then(
        // A database that cannot be reached is waited for, not taken for the run's failure.
        (done) =>
          whileDatabaseDown(
            () =>
              complete(deps, attempt, done, timing, started, log).catch((err: unknown) => {
                if (isDatabaseUnavailable(err)) throw err;
                return settleFailure(deps, attempt, err, timing, log, done.unwritten);
              }),
            log,
          ),
        (err: unknown) => {
          timing.totalMs = performance.now() - started;
          const failed = err instanceof RunFailed ? err : new RunFailed(err, []);
          return whileDatabaseDown(() => settleFailure(deps, attempt, failed.cause, timing, log, failed.unwritten), log);
        },
      );
    } finally {
      stopKeeping();
      slot.handBack.removeEventListener('abort', handBack);
      slot.running.delete(id);
    }
  });
}

/** What a task left to record: its result, and the steps it reported that are not written yet. */
interface Done {
  kind: string;
  result: TaskResult;
  unwritten: StepEvent[];
}

/** Runs the kind's task for the attempt; what it made is recorded afterwards by `complete`. */
async function execute(deps: JobDeps, slot: RunSlot, a: Attempt, stop: AbortController, timing: Timing, log: Logger, releaseRunner: () => void): Promise<Done> {
  const { ds } = deps;
  const signal = stop.signal;
  signal.throwIfAborted();
  const kind = deps.kinds.find((k) => k.name === a.job.kind);
  if (!kind) throw new JobFailure('UNKNOWN_KIND', `this worker does not run ${a.job.kind} jobs`, true);
  const params = kind.params.safeParse(a.job.params);
  if (!params.success) throw new JobFailure('INVALID_PARAMETERS', `the job's parameters are not those of a ${kind.name} job: ${params.error.issues[0]?.message}`, false);
  log.info('job started');

  // Steps are written in order while the task goes on; a refused write (the lease was lost) stops the run.
  const writer = new EventWriter(ds, a, (err) => {
    if (!signal.aborted) stop.abort(err);
  });
  const reporter = new StepReporter(kind.steps);
  const held: ModelDir[] = [];
  let released = false;
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
    report: (step, report) => writer.push(reporter.event(step, report)),
    reported: () => writer.written(),
    model: async (role) => {
      const model = await jobModel(ds, a.job.id, role);
      if (!model) return undefined;
      const files = await deps.modelDir(model, signal);
      held.push(files);
      slot.usesModels([model.id]);
      return { model, dir: files.dir, fetchMs: files.fetchMs } satisfies HeldModel;
    },
    releaseRunner: () => {
      released = true;
      releaseRunner();
    },
    inRunner: async <T>(module: string, input: unknown, onEvent: (name: string, data: unknown) => void) => {
      // The slot's next job may be using it.
      if (released) throw new Error('the task let the runner go and cannot use it again');
      return (await slot.runner.run({ jobId: a.job.id, module, input }, onEvent, {
        signal,
        softTimeoutMs: limits.softTimeoutSeconds * 1000,
        hardTimeoutMs: limits.hardTimeoutSeconds * 1000,
        cancelGraceMs: deps.cancelGraceMs,
      })) as T;
    },
  };
  try {
    const task = await taskOf(kind);
    const result = await task.run(ctx);
    signal.throwIfAborted();
    // Taken now, not when the outcome is recorded (maybe after the slot's last one): what is left
    // goes with the completion, and a write of their own would only come later.
    return { kind: kind.name, result, unwritten: await writer.take() };
  } catch (err) {
    throw new RunFailed(err, await writer.take());
  } finally {
    held.forEach((h) => h.release());
  }
}

/** A run's failure, with the steps it reported that are not written yet: they go before the failure's event. */
class RunFailed {
  constructor(
    readonly cause: unknown,
    readonly unwritten: StepEvent[],
  ) {}
}

/** Records a finished attempt: COMPLETED, its outputs and what its kind writes with them, fenced. */
async function complete(deps: JobDeps, a: Attempt, done: Done, timing: Timing, started: number, log: Logger): Promise<void> {
  timing.totalMs = performance.now() - started;
  await completeAttempt(deps.ds, deps.boss, a, done.result, timing, done.unwritten);
  deps.metrics.jobs.inc({ kind: done.kind, outcome: 'completed' });
  deps.metrics.observeTiming(done.kind, timing);
  log.info({ timing }, 'job completed');
}

/**
 * Runs `write` until the database answers: an outage shorter than the lease costs the attempt
 * nothing (the lease keeper keeps trying too). Past a few minutes it gives up; pg-boss then hands
 * the job on when its heartbeat has stopped.
 */
async function whileDatabaseDown<T>(write: () => Promise<T>, log: Logger): Promise<T> {
  const giveUpAt = Date.now() + 5 * 60_000;
  for (let wait = 250; ; wait = Math.min(wait * 2, 5_000)) {
    try {
      return await write();
    } catch (err) {
      if (!isDatabaseUnavailable(err) || Date.now() > giveUpAt) throw err;
      log.warn({ retryInMs: wait }, 'the database cannot be reached; recording the outcome when it is back');
      await delay(wait);
    }
  }
}

/** Each kind's task module, loaded once per process. */
const tasks = new Map<KindDefinition, ReturnType<KindDefinition['task']>>();
const taskOf = (kind: KindDefinition) => {
  let task = tasks.get(kind);
  if (!task) tasks.set(kind, (task = kind.task()));
  return task;
};

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

/**
 * Renews the lease five times per lease period, and every half second while renewals fail, so
 * that a database outage shorter than the lease less two periods costs no attempt: the first
 * renewal after it lands before pg-boss or the reconciler can judge the worker gone. Stops the
 * run if the lease is lost or cancellation was asked for. Returns the function that stops it.
 */
function keepLease(deps: JobDeps, a: Attempt, stop: AbortController, log: Logger): () => void {
  const every = (deps.leaseSeconds * 1000) / 5;
  let timer: NodeJS.Timeout;
  let stopped = false;
  const renew = async () => {
    let next = every;
    try {
      const { held, cancelRequested } = await renewLease(deps.ds, deps.boss, a);
      if (!held && !stop.signal.aborted) {
        log.warn('lease lost: another worker owns this job now; stopping');
        stop.abort(new LeaseLost('lease lost'));
      } else if (cancelRequested && !stop.signal.aborted) {
        stop.abort(Stop.cancelled());
      }
    } catch (err) {
      log.warn({ err }, 'could not renew the lease; trying again shortly');
      next = 500;
    }
    if (!stopped) timer = setTimeout(() => void renew(), next).unref();
  };
  timer = setTimeout(() => void renew(), every).unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

async function settleFailure(deps: JobDeps, a: Attempt, err: unknown, timing: Timing, log: Logger, unwritten: StepEvent[]) {
  await deps.storage.deletePrefix(attemptKey(a.job.id, a.lease)).catch((e) => log.warn({ err: e }, 'could not remove partial files'));
  if (err instanceof LeaseLost) {
    deps.metrics.jobs.inc({ kind: a.job.kind, outcome: 'lease_lost' });
    log.warn({ reason: err.message }, 'lease lost: this attempt\'s writes are refused');
    return;
  }
  const failure =
    err instanceof JobFailure ? err : new JobFailure('INTERNAL', err instanceof Error ? err.message : String(err), true, { cause: err });
  try {
    const outcome = await failAttempt(deps.ds, deps.boss, a, failure, timing, unwritten);
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
