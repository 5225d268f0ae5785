import os from 'node:os';
import type { JobWithMetadata, PgBoss } from 'pg-boss';
import type { DataSource, EntityManager } from 'typeorm';
import { type Job, JobEntity, QUEUED, type Timing } from '../db/entities/job.js';
import { entityFromRow, queryRows } from '../db/sql.js';
import type { JobFailure } from '../errors.js';
import { appendEvent, appendEvents, type NewEvent } from '../events/event-log.js';
import type { TaskResult } from './kind.js';
import { inTransaction } from './queue.js';
import { endJob } from './terminal.js';

/** What pg-boss's settle calls return at run time (its typings declare an empty interface). */
interface Settled {
  affected: number;
  settled?: string[];
}

/** A worker's write was refused: its lease expired or another worker took the job over. */
export class LeaseLost extends Error {
  override name = 'LeaseLost';
}

/** Identifies this process in attempts and logs. */
export const WORKER_ID = `${os.hostname()}:${process.pid}`;

/** The pg-boss job an attempt was fetched as: what settling it names. */
export interface QueuedJob {
  id: string;
  queue: string;
  retryCount: number;
  retryLimit: number;
}

/** One worker's hold on one run of a job. Every write it makes is fenced by `lease`. */
export interface Attempt {
  job: Job;
  /** Fencing token, bumped in the database each time any worker takes the job. */
  lease: number;
  /** 1 for the first run, 2 for the first retry, … */
  number: number;
  queued: QueuedJob;
  leaseSeconds: number;
}

const lost = (a: Attempt) => new LeaseLost(`lease ${a.lease} on job ${a.job.id} is no longer held`);

/**
 * Takes the job for this pg-boss job's attempt, in `em`'s transaction (the one that fetched it,
 * so that fetching and taking cost one durable commit): RUNNING, a new lease whose expiry the
 * worker keeps pushing back, and an attempt row; a run that was still open (its worker died) is
 * closed as WORKER_LOST. One statement in the common case, since it sits between two jobs on an
 * accelerator. No attempt when there is nothing to run: the job is gone or over, was cancelled,
 * or missed its deadline (the last two are ended here, and the pg-boss job with them). The
 * leases of the closed runs are for the caller to hand on once the transaction commits.
 */
export async function beginAttempt(
  em: EntityManager,
  boss: PgBoss,
  fetched: JobWithMetadata<unknown>,
  jobId: string,
  leaseSeconds: number,
): Promise<{ attempt?: Attempt; lostLeases: number[] }> {
  const number = fetched.retryCount + 1;
  const queued: QueuedJob = { id: fetched.id, queue: fetched.name, retryCount: fetched.retryCount, retryLimit: fetched.retryLimit };
  const [row] = await queryRows(
    em,
    `WITH j AS (
       UPDATE jobs
       SET lease = lease + 1, status = 'RUNNING', retry_count = $3,
           lease_expires_at = now() + make_interval(secs => $2), started_at = COALESCE(started_at, clock_timestamp())
       WHERE id = $1 AND status IN ('PENDING', 'RUNNING') AND cancel_requested_at IS NULL
         AND NOT (started_at IS NULL AND deadline_at IS NOT NULL AND deadline_at < now())
       RETURNING *
     ), lost AS (
       ${CLOSE_LOST_RUNS} AND EXISTS (SELECT 1 FROM j) RETURNING lease
     ), attempt AS (
       INSERT INTO job_attempts (job_id, lease, attempt, worker) SELECT id, lease, $4, $5 FROM j
     )
     SELECT j.*, ARRAY(SELECT lease FROM lost) AS lost_leases FROM j`,
    [jobId, leaseSeconds, fetched.retryCount, number, WORKER_ID],
  );
  if (row) {
    const job = entityFromRow(em, JobEntity, row);
    return { attempt: { job, lease: job.lease, number, queued, leaseSeconds }, lostLeases: row.lost_leases };
  }
  // Not runnable: find out why, under the row's lock, and end it if it was cancelled or late.
  const [state] = await em.query(
    `SELECT status, started_at IS NULL AS never_started, cancel_requested_at IS NOT NULL AS cancel_requested,
            deadline_at IS NOT NULL AND deadline_at < now() AS late
     FROM jobs WHERE id = $1 FOR UPDATE`,
    [jobId],
  );
  const db = inTransaction(em);
  if (!state || (state.status !== 'PENDING' && state.status !== 'RUNNING')) {
    await boss.complete(queued.queue, [{ id: fetched.id, retryCount: fetched.retryCount }], { skipped: 'job gone or over' }, { db });
    return { lostLeases: [] };
  }
  if (!state.cancel_requested && !(state.late && state.never_started)) throw new Error(`job ${jobId} is runnable after all`);
  const lostLeases = await closeLostRuns(em, jobId);
  await endJob(em, jobId, { ...(state.cancel_requested ? CANCELLED_BEFORE_RERUN : DEADLINE_PASSED), attempt: number - 1 });
  await settleJob(boss, queued, 'cancel', db);
  return { lostLeases };
}

const CANCELLED_BEFORE_RERUN = { status: 'CANCELLED' as const, message: 'Cancelled before it ran again' };

/** How a job that waited past its deadline ends: it never runs. */
export const DEADLINE_PASSED = {
  status: 'CANCELLED' as const,
  message: 'Cancelled: not started before its deadline',
  error: { code: 'DEADLINE_EXCEEDED', message: 'not started before its deadline', retryable: false },
};

const CLOSE_LOST_RUNS = `UPDATE job_attempts SET ended_at = now(), outcome = 'WORKER_LOST', error_code = 'WORKER_LOST',
       error_message = 'the worker running it stopped answering', error_retryable = true
     WHERE job_id = $1 AND outcome IS NULL`;

/** Runs that never recorded an end belonged to workers that stopped answering; their leases. */
export async function closeLostRuns(em: EntityManager, jobId: string): Promise<number[]> {
  return (await queryRows<{ lease: number }>(em, `${CLOSE_LOST_RUNS} RETURNING lease`, [jobId])).map((r) => r.lease);
}

/**
 * Told, once they are closed, of the runs of a job whose worker died (their leases): what they
 * had written is theirs alone (a folder per lease), and nothing else will remove it.
 */
export type LostRunsHandler = (jobId: string, leases: number[]) => void;

/**
 * Pushes the lease's expiry back and refreshes the queue's heartbeat. Tells whether the lease is
 * still held (if not, the worker must stop: whatever it writes now is refused) and whether
 * cancellation was asked for.
 */
export async function renewLease(ds: DataSource, boss: PgBoss, a: Attempt): Promise<{ held: boolean; cancelRequested: boolean }> {
  const rows = await queryRows<{ cancel_requested: boolean }>(
    ds,
    `UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3)
     WHERE id = $1 AND lease = $2 AND lease_expires_at > now()
     RETURNING cancel_requested_at IS NOT NULL AS cancel_requested`,
    [a.job.id, a.lease, a.leaseSeconds],
  );
  if (!rows[0]) return { held: false, cancelRequested: false };
  const touched = (await boss.touch(a.queued.queue, [{ id: a.queued.id, retryCount: a.queued.retryCount }])) as Settled;
  return { held: touched.settled === undefined || touched.settled.includes(a.queued.id), cancelRequested: rows[0].cancel_requested };
}

/** A step of a running attempt, before it is written. */
export type StepEvent = Omit<NewEvent, 'attempt' | 'status'>;

const running = (a: Attempt, ev: StepEvent): NewEvent => ({ ...ev, status: 'RUNNING', attempt: a.number });

/**
 * Appends RUNNING events of this attempt in one statement, fenced by its lease. They are
 * progress, not state changes: written without waiting for the disk (see appendEvents).
 */
export async function recordEvents(ds: DataSource, a: Attempt, events: StepEvent[]): Promise<void> {
  const written = await appendEvents(ds.manager, a.job.id, events.map((ev) => running(a, ev)), { lease: a, progressOnly: true });
  if (!written.length) throw lost(a);
}

/**
 * Records the attempt COMPLETED, fenced by its lease, with the queue's completion: one durable
 * transaction, whose first statement writes the steps not yet written, COMPLETED, the timing,
 * the attempt's end and its outputs; then the kind's own writes (`commit`) and pg-boss's.
 */
export async function completeAttempt(ds: DataSource, boss: PgBoss, a: Attempt, result: TaskResult, timing: Timing, unwritten: StepEvent[] = []): Promise<void> {
  const completed: NewEvent = { step: 'COMPLETED', status: 'COMPLETED', attempt: a.number, progress: 1, message: 'Completed' };
  const events = [...unwritten.map((ev) => running(a, ev)), completed];
  const outputs = result.outputs.map((o) => ({ index: o.index, media_type: o.mediaType, storage_key: o.storageKey, mime_type: o.mimeType, bytes: o.bytes, sha256: o.sha256, metadata: o.metadata }));
  const ending = (p: number) => ({
    set: `timing = $${p}, completed_at = clock_timestamp(), lease_expires_at = NULL`,
    ctes: `ended AS (
       UPDATE job_attempts SET ended_at = clock_timestamp(), outcome = 'COMPLETED' FROM j WHERE job_attempts.job_id = j.id AND job_attempts.lease = $6
     ), outputs AS (
       INSERT INTO job_outputs (job_id, index, media_type, storage_key, mime_type, bytes, sha256, metadata)
       SELECT j.id, o.index, o.media_type, o.storage_key, o.mime_type, o.bytes, o.sha256, o.metadata
       FROM j, jsonb_to_recordset($${p + 1}::jsonb) AS o(index int, media_type text, storage_key text, mime_type text, bytes bigint, sha256 text, metadata jsonb)
     )`,
    params: [JSON.stringify(timing), JSON.stringify(outputs)],
  });
  await ds.transaction(async (em) => {
    if (!(await appendEvents(em, a.job.id, events, { lease: a, also: ending })).length) throw lost(a);
    await result.commit?.(em);
    await settleJob(boss, a.queued, 'complete', inTransaction(em), { outputs: outputs.length });
  });
}

/**
 * Ends the attempt after a failure, after the steps it reported that are not written yet: back
 * to PENDING for pg-boss to retry when the failure is retryable and tries are left, otherwise
 * FAILED (or CANCELLED) for good.
 */
export async function failAttempt(
  ds: DataSource,
  boss: PgBoss,
  a: Attempt,
  failure: JobFailure,
  timing: Timing,
  unwritten: StepEvent[] = [],
): Promise<'retry' | 'failed' | 'cancelled'> {
  const outcome = failure.code === 'CANCELLED' ? 'cancelled' : failure.retryable && a.queued.retryCount < a.queued.retryLimit ? 'retry' : 'failed';
  const error = { code: failure.code, message: failure.message, retryable: failure.retryable };
  await ds.transaction(async (em) => {
    // The steps the run reported before it failed, not written yet, go first.
    if (unwritten.length && !(await appendEvents(em, a.job.id, unwritten.map((ev) => running(a, ev)), { lease: a })).length) throw lost(a);
    let written: boolean;
    if (outcome === 'retry') {
      written = await requeue(em, a.job.id, a.number, `Attempt ${a.number} failed (${failure.code}: ${failure.message}); retrying`, a);
    } else {
      const status = outcome === 'cancelled' ? 'CANCELLED' : 'FAILED';
      const message = outcome === 'cancelled' ? failure.message : `${failure.code}: ${failure.message}`;
      written = await endJob(em, a.job.id, { status, message, attempt: a.number, timing, ...(outcome === 'failed' ? { error } : {}) }, a);
    }
    if (!written) throw lost(a);
    await closeAttempt(em, a, outcome === 'retry' ? 'RETRY' : outcome === 'cancelled' ? 'CANCELLED' : 'FAILED', error);
    const db = inTransaction(em);
    // pg-boss retries whatever fails; a permanent failure or a cancel is settled so it does not.
    if (outcome === 'retry' || (outcome === 'failed' && failure.retryable)) await settleJob(boss, a.queued, 'fail', db, error);
    else if (outcome === 'cancelled') await settleJob(boss, a.queued, 'cancel', db);
    else await settleJob(boss, a.queued, 'complete', db, { failed: error });
  });
  return outcome;
}

/**
 * Puts a job back to PENDING after attempt `attempt` ended without finishing, for pg-boss to
 * run again (its QUEUED event says why). With a lease, only while that lease is held.
 */
export async function requeue(em: EntityManager, jobId: string, attempt: number, message: string, lease?: { lease: number }): Promise<boolean> {
  const written = await appendEvent(em, jobId, { step: QUEUED, status: 'PENDING', attempt, progress: 0, message }, lease);
  if (written) await em.query('UPDATE jobs SET lease_expires_at = NULL WHERE id = $1', [jobId]);
  return written !== undefined;
}

async function closeAttempt(em: EntityManager, a: Attempt, outcome: string, error?: { code: string; message: string; retryable: boolean }) {
  await em.query(
    `UPDATE job_attempts SET ended_at = now(), outcome = $3, error_code = $4, error_message = $5, error_retryable = $6
     WHERE job_id = $1 AND lease = $2`,
    [a.job.id, a.lease, outcome, error?.code ?? null, error?.message ?? null, error?.retryable ?? null],
  );
}

/** Settles the pg-boss job, in the caller's transaction when `db` is given. */
async function settleJob(boss: PgBoss, job: QueuedJob, how: 'complete' | 'fail' | 'cancel', db: ReturnType<typeof inTransaction> | undefined, data?: object) {
  const attempt = [{ id: job.id, retryCount: job.retryCount }];
  const options = db ? { db } : {};
  const result = (
    how === 'cancel'
      ? await boss.cancel(job.queue, attempt, options)
      : how === 'fail'
        ? await boss.fail(job.queue, attempt, data, options)
        : await boss.complete(job.queue, attempt, data, options)
  ) as Settled;
  // Fenced by pg-boss to the attempt this worker fetched: 0 means the queue gave the job away.
  if (result.affected !== 1) throw new LeaseLost(`the queue no longer holds job ${job.id} at retry ${job.retryCount}`);
}
