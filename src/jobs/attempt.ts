import type { JobWithMetadata, PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import { type Generation, GenerationEntity, type Timing } from '../db/entities/generation.js';
import { type Image, ImageEntity } from '../db/entities/image.js';
import type { JobFailure } from '../errors.js';
import { appendEvent, type NewEvent } from '../events/event-log.js';
import { GENERATE_QUEUE, inTransaction } from './queue.js';

/** What pg-boss's settle calls return at run time (its typings declare an empty interface). */
interface Settled {
  affected: number;
  settled?: string[];
}

/** A worker's write was refused: its lease expired or another worker took the job over. */
export class LeaseLost extends Error {
  override name = 'LeaseLost';
}

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

/**
 * Takes the generation for this job's attempt: RUNNING, a new lease, and an expiry the worker
 * keeps pushing back. Undefined when there is nothing to run (deleted or already over).
 */
export async function beginAttempt(ds: DataSource, job: JobWithMetadata<unknown>, generationId: string, leaseSeconds: number): Promise<Attempt | undefined> {
  const rows: Record<string, unknown>[] = await ds.query(
    `UPDATE generations
     SET lease = lease + 1, status = 'RUNNING', retry_count = $3,
         lease_expires_at = now() + make_interval(secs => $2), started_at = COALESCE(started_at, now())
     WHERE id = $1 AND status IN ('PENDING', 'RUNNING')
     RETURNING id`,
    [generationId, leaseSeconds, job.retryCount],
  );
  if (!rows[0]) return undefined;
  const generation = await ds.manager.findOneByOrFail(GenerationEntity, { id: generationId });
  return {
    generation,
    lease: generation.lease,
    number: job.retryCount + 1,
    job: { id: job.id, retryCount: job.retryCount, retryLimit: job.retryLimit },
    leaseSeconds,
  };
}

/**
 * Pushes the lease's expiry back and refreshes the queue's heartbeat. False when the lease is
 * gone: the worker must stop, and whatever it writes from now on is refused.
 */
export async function renewLease(ds: DataSource, boss: PgBoss, a: Attempt): Promise<boolean> {
  const rows: unknown[] = await ds.query(
    `UPDATE generations SET lease_expires_at = now() + make_interval(secs => $3)
     WHERE id = $1 AND lease = $2 AND lease_expires_at > now() RETURNING id`,
    [a.generation.id, a.lease, a.leaseSeconds],
  );
  if (!rows.length) return false;
  const touched = (await boss.touch(GENERATE_QUEUE, [{ id: a.job.id, retryCount: a.job.retryCount }])) as Settled;
  return touched.settled === undefined || touched.settled.includes(a.job.id);
}

export async function recordEvent(ds: DataSource, a: Attempt, ev: Omit<NewEvent, 'attempt' | 'status'>): Promise<void> {
  const written = await appendEvent(ds.manager, a.generation.id, { ...ev, status: 'RUNNING', attempt: a.number }, a);
  if (!written) throw new LeaseLost(`lease ${a.lease} on generation ${a.generation.id} is no longer held`);
}

/** An image as the worker stored it, before it has a row. */
export type StoredImage = Omit<Image, 'id' | 'generationId' | 'createdAt'>;

/** Images, timing, COMPLETED and the job's completion: all in one fenced transaction. */
export async function completeAttempt(ds: DataSource, boss: PgBoss, a: Attempt, images: StoredImage[], timing: Timing): Promise<void> {
  await ds.transaction(async (em) => {
    const ev = await appendEvent(em, a.generation.id, { step: 'COMPLETED', status: 'COMPLETED', attempt: a.number, progress: 1, message: 'Completed' }, a);
    if (!ev) throw new LeaseLost(`lease ${a.lease} on generation ${a.generation.id} is no longer held`);
    await em.update(GenerationEntity, { id: a.generation.id }, { timing, completedAt: () => 'now()', leaseExpiresAt: null });
    await em.insert(ImageEntity, images.map((img) => ({ ...img, generationId: a.generation.id })));
    await settleJob(boss, a, 'complete', inTransaction(em), { images: images.length });
  });
}

/**
 * Ends the attempt after a failure: back to PENDING for pg-boss to retry when the failure is
 * retryable and tries are left, otherwise FAILED (or CANCELLED) for good.
 */
export async function failAttempt(ds: DataSource, boss: PgBoss, a: Attempt, failure: JobFailure, timing: Timing): Promise<'retry' | 'failed' | 'cancelled'> {
  const outcome = failure.code === 'CANCELLED' ? 'cancelled' : failure.retryable && a.job.retryCount < a.job.retryLimit ? 'retry' : 'failed';
  await ds.transaction(async (em) => {
    const ev: Omit<NewEvent, 'attempt'> =
      outcome === 'retry'
        ? { step: 'QUEUED', status: 'PENDING', progress: 0, message: `Attempt ${a.number} failed (${failure.code}: ${failure.message}); retrying` }
        : outcome === 'cancelled'
          ? { step: 'CANCELLED', status: 'CANCELLED', progress: a.generation.progress, message: failure.message }
          : { step: 'FAILED', status: 'FAILED', progress: a.generation.progress, message: `${failure.code}: ${failure.message}` };
    const written = await appendEvent(em, a.generation.id, { ...ev, attempt: a.number }, a);
    if (!written) throw new LeaseLost(`lease ${a.lease} on generation ${a.generation.id} is no longer held`);
    await em.update(
      GenerationEntity,
      { id: a.generation.id },
      outcome === 'retry'
        ? { leaseExpiresAt: null }
        : {
            leaseExpiresAt: null,
            timing,
            completedAt: () => 'now()',
            ...(outcome === 'failed' ? { errorCode: failure.code, errorMessage: failure.message, errorRetryable: failure.retryable } : {}),
          },
    );
    const db = inTransaction(em);
    const error = { code: failure.code, message: failure.message };
    // pg-boss retries whatever fails; a permanent failure or a cancel is settled so it does not.
    if (outcome === 'retry' || (outcome === 'failed' && failure.retryable)) await settleJob(boss, a, 'fail', db, error);
    else if (outcome === 'cancelled') await settleJob(boss, a, 'cancel', db);
    else await settleJob(boss, a, 'complete', db, { failed: error });
  });
  return outcome;
}

async function settleJob(boss: PgBoss, a: Attempt, how: 'complete' | 'fail' | 'cancel', db: ReturnType<typeof inTransaction>, data?: object) {
  const attempt = [{ id: a.job.id, retryCount: a.job.retryCount }];
  const result = (
    how === 'cancel'
      ? await boss.cancel(GENERATE_QUEUE, attempt, { db })
      : how === 'fail'
        ? await boss.fail(GENERATE_QUEUE, attempt, data, { db })
        : await boss.complete(GENERATE_QUEUE, attempt, data, { db })
  ) as Settled;
  // Fenced by pg-boss to the attempt this worker fetched: 0 means the queue gave the job away.
  if (result.affected !== 1) throw new LeaseLost(`the queue no longer holds attempt ${a.number} of generation ${a.generation.id}`);
}
