import os from 'node:os';
import type { JobWithMetadata, PgBoss } from 'pg-boss';
import type { DataSource, EntityManager } from 'typeorm';
import { type Generation, GenerationEntity, type Timing } from '../db/entities/generation.js';
import { type Image, ImageEntity } from '../db/entities/image.js';
import type { JobFailure } from '../errors.js';
import { appendEvent, type NewEvent } from '../events/event-log.js';
import { GENERATE_QUEUE, inTransaction } from './queue.js';
import { endGeneration } from './terminal.js';
import { entityFromRow, queryRows } from '../db/sql.js';

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

/** One worker's hold on one run of a generation. Every write it makes is fenced by `lease`. */
export interface Attempt {
  generation: Generation;
  /** Fencing token, bumped in the database each time any worker takes the generation. */
  lease: number;
  /** 1 for the first run, 2 for the first retry, … */
  number: number;
  job: { id: string; retryCount: number; retryLimit: number };
  leaseSeconds: number;
}

const lost = (a: Attempt) => new LeaseLost(`lease ${a.lease} on generation ${a.generation.id} is no longer held`);

/**
 * Takes the generation for this job's attempt: RUNNING, a new lease whose expiry the worker
 * keeps pushing back, and an attempt row; a run that was still open (its worker died) is closed
 * as WORKER_LOST. One statement in the common case, since it sits between two jobs on an
 * accelerator. Undefined when there is nothing to run: the generation is gone or over, was
 * cancelled, or missed its deadline (the last two are ended here, and the job with them).
 */
export async function beginAttempt(ds: DataSource, boss: PgBoss, job: JobWithMetadata<unknown>, generationId: string, leaseSeconds: number): Promise<Attempt | undefined> {
  const number = job.retryCount + 1;
  const jobAttempt = { id: job.id, retryCount: job.retryCount, retryLimit: job.retryLimit };
  const [row] = await queryRows(
    ds,
    `WITH g AS (
       UPDATE generations
       SET lease = lease + 1, status = 'RUNNING', retry_count = $3,
           lease_expires_at = now() + make_interval(secs => $2), started_at = COALESCE(started_at, clock_timestamp())
       WHERE id = $1 AND status IN ('PENDING', 'RUNNING') AND cancel_requested_at IS NULL
         AND NOT (started_at IS NULL AND deadline_at IS NOT NULL AND deadline_at < now())
       RETURNING *
     ), lost AS (
       ${CLOSE_LOST_RUNS} AND EXISTS (SELECT 1 FROM g)
     ), attempt AS (
       INSERT INTO generation_attempts (generation_id, lease, attempt, worker) SELECT id, lease, $4, $5 FROM g
     )
     SELECT * FROM g`,
    [generationId, leaseSeconds, job.retryCount, number, WORKER_ID],
  );
  if (row) {
    const generation = entityFromRow(ds, GenerationEntity, row);
    return { generation, lease: generation.lease, number, job: jobAttempt, leaseSeconds };
  }
  // Not runnable: find out why, under the row's lock, and end it if it was cancelled or late.
  const settled = await ds.transaction(async (em) => {
    const [state] = await em.query(
      `SELECT status, started_at IS NULL AS never_started, cancel_requested_at IS NOT NULL AS cancel_requested,
              deadline_at IS NOT NULL AND deadline_at < now() AS late
       FROM generations WHERE id = $1 FOR UPDATE`,
      [generationId],
    );
    if (!state || (state.status !== 'PENDING' && state.status !== 'RUNNING')) return false;
    if (!state.cancel_requested && !(state.late && state.never_started)) throw new Error(`generation ${generationId} is runnable after all`);
    await closeLostRuns(em, generationId);
    const ending = state.cancel_requested
      ? { status: 'CANCELLED' as const, message: 'Cancelled before it ran again' }
      : { status: 'CANCELLED' as const, message: 'Cancelled: not started before its deadline', error: { code: 'DEADLINE_EXCEEDED', message: 'not started before its deadline', retryable: false } };
    await endGeneration(em, generationId, { ...ending, attempt: number - 1 });
    await settleJob(boss, jobAttempt, 'cancel', inTransaction(em));
    return true;
  });
  if (!settled) await boss.complete(GENERATE_QUEUE, [{ id: job.id, retryCount: job.retryCount }], { skipped: 'generation gone or over' });
  return undefined;
}

const CLOSE_LOST_RUNS = `UPDATE generation_attempts SET ended_at = now(), outcome = 'WORKER_LOST', error_code = 'WORKER_LOST',
       error_message = 'the worker running it stopped answering', error_retryable = true
     WHERE generation_id = $1 AND outcome IS NULL`;

/** Runs that never recorded an end belonged to workers that stopped answering. */
export async function closeLostRuns(em: EntityManager, generationId: string): Promise<void> {
  await em.query(CLOSE_LOST_RUNS, [generationId]);
}

/**
 * Pushes the lease's expiry back and refreshes the queue's heartbeat. Tells whether the lease is
 * still held (if not, the worker must stop: whatever it writes now is refused) and whether
 * cancellation was asked for.
 */
export async function renewLease(ds: DataSource, boss: PgBoss, a: Attempt): Promise<{ held: boolean; cancelRequested: boolean }> {
  const rows = await queryRows<{ cancel_requested: boolean }>(
    ds,
    `UPDATE generations SET lease_expires_at = now() + make_interval(secs => $3)
     WHERE id = $1 AND lease = $2 AND lease_expires_at > now()
     RETURNING cancel_requested_at IS NOT NULL AS cancel_requested`,
    [a.generation.id, a.lease, a.leaseSeconds],
  );
  if (!rows[0]) return { held: false, cancelRequested: false };
  const touched = (await boss.touch(GENERATE_QUEUE, [{ id: a.job.id, retryCount: a.job.retryCount }])) as Settled;
  return { held: touched.settled === undefined || touched.settled.includes(a.job.id), cancelRequested: rows[0].cancel_requested };
}

export async function recordEvent(ds: DataSource, a: Attempt, ev: Omit<NewEvent, 'attempt' | 'status'>): Promise<void> {
  const written = await appendEvent(ds.manager, a.generation.id, { ...ev, status: 'RUNNING', attempt: a.number }, a);
  if (!written) throw lost(a);
}

/** An image as the worker stored it, before it has a row. */
export type StoredImage = Omit<Image, 'id' | 'generationId' | 'createdAt'>;

/** Images, timing, COMPLETED and the job's completion: all in one fenced transaction. */
export async function completeAttempt(ds: DataSource, boss: PgBoss, a: Attempt, images: StoredImage[], timing: Timing): Promise<void> {
  await ds.transaction(async (em) => {
    const ev = await appendEvent(em, a.generation.id, { step: 'COMPLETED', status: 'COMPLETED', attempt: a.number, progress: 1, message: 'Completed' }, a);
    if (!ev) throw lost(a);
    await em.insert(ImageEntity, images.map((img) => ({ ...img, generationId: a.generation.id })));
    await settleJob(boss, a.job, 'complete', inTransaction(em), { images: images.length });
    // Last, so that completed_at is as close to the commit as it gets.
    await em.query(
      `WITH attempt AS (
         UPDATE generation_attempts SET ended_at = clock_timestamp(), outcome = 'COMPLETED' WHERE generation_id = $1 AND lease = $2
       )
       UPDATE generations SET timing = $3, completed_at = clock_timestamp(), lease_expires_at = NULL WHERE id = $1`,
      [a.generation.id, a.lease, JSON.stringify(timing)],
    );
  });
}

/**
 * Ends the attempt after a failure: back to PENDING for pg-boss to retry when the failure is
 * retryable and tries are left, otherwise FAILED (or CANCELLED) for good.
 */
export async function failAttempt(ds: DataSource, boss: PgBoss, a: Attempt, failure: JobFailure, timing: Timing): Promise<'retry' | 'failed' | 'cancelled'> {
  const outcome = failure.code === 'CANCELLED' ? 'cancelled' : failure.retryable && a.job.retryCount < a.job.retryLimit ? 'retry' : 'failed';
  const error = { code: failure.code, message: failure.message, retryable: failure.retryable };
  await ds.transaction(async (em) => {
    let written: boolean;
    if (outcome === 'retry') {
      const message = `Attempt ${a.number} failed (${failure.code}: ${failure.message}); retrying`;
      written = !!(await appendEvent(em, a.generation.id, { step: 'QUEUED', status: 'PENDING', attempt: a.number, progress: 0, message }, a));
      if (written) await em.update(GenerationEntity, { id: a.generation.id }, { leaseExpiresAt: null });
    } else {
      const status = outcome === 'cancelled' ? 'CANCELLED' : 'FAILED';
      const message = outcome === 'cancelled' ? failure.message : `${failure.code}: ${failure.message}`;
      written = await endGeneration(em, a.generation.id, { status, message, attempt: a.number, timing, ...(outcome === 'failed' ? { error } : {}) }, a);
    }
    if (!written) throw lost(a);
    await closeAttempt(em, a, outcome === 'retry' ? 'RETRY' : outcome === 'cancelled' ? 'CANCELLED' : 'FAILED', error);
    const db = inTransaction(em);
    // pg-boss retries whatever fails; a permanent failure or a cancel is settled so it does not.
    if (outcome === 'retry' || (outcome === 'failed' && failure.retryable)) await settleJob(boss, a.job, 'fail', db, error);
    else if (outcome === 'cancelled') await settleJob(boss, a.job, 'cancel', db);
    else await settleJob(boss, a.job, 'complete', db, { failed: error });
  });
  return outcome;
}

async function closeAttempt(em: EntityManager, a: Attempt, outcome: string, error?: { code: string; message: string; retryable: boolean }) {
  await em.query(
    `UPDATE generation_attempts SET ended_at = now(), outcome = $3, error_code = $4, error_message = $5, error_retryable = $6
     WHERE generation_id = $1 AND lease = $2`,
    [a.generation.id, a.lease, outcome, error?.code ?? null, error?.message ?? null, error?.retryable ?? null],
  );
}

async function settleJob(boss: PgBoss, job: Attempt['job'], how: 'complete' | 'fail' | 'cancel', db: ReturnType<typeof inTransaction>, data?: object) {
  const attempt = [{ id: job.id, retryCount: job.retryCount }];
  const result = (
    how === 'cancel'
      ? await boss.cancel(GENERATE_QUEUE, attempt, { db })
      : how === 'fail'
        ? await boss.fail(GENERATE_QUEUE, attempt, data, { db })
        : await boss.complete(GENERATE_QUEUE, attempt, data, { db })
  ) as Settled;
  // Fenced by pg-boss to the attempt this worker fetched: 0 means the queue gave the job away.
  if (result.affected !== 1) throw new LeaseLost(`the queue no longer holds job ${job.id} at retry ${job.retryCount}`);
}
