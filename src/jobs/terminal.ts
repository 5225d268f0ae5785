import type { EntityManager } from 'typeorm';
import type { JobStatus, Timing } from '../db/entities/job.js';
import { appendEvent, type Lease } from '../events/event-log.js';

export interface Ending {
  status: Extract<JobStatus, 'FAILED' | 'CANCELLED'>;
  message: string;
  /** Which run this ends (0 when none ever started). */
  attempt: number;
  error?: { code: string; message: string; retryable: boolean };
  timing?: Timing;
}

/**
 * Ends a job for good as FAILED or CANCELLED, in the caller's transaction: its terminal event
 * (the last one every stream emits) and its row. With a lease, only while that lease is held;
 * false when it was refused or the job had already ended.
 */
export async function endJob(em: EntityManager, jobId: string, end: Ending, lease?: Lease): Promise<boolean> {
  const [row] = await em.query('SELECT status, progress FROM jobs WHERE id = $1 FOR UPDATE', [jobId]);
  if (!row || row.status === 'COMPLETED' || row.status === 'FAILED' || row.status === 'CANCELLED') return false;
  const event = await appendEvent(em, jobId, { step: end.status, status: end.status, attempt: end.attempt, progress: row.progress, message: end.message }, lease);
  if (!event) return false;
  await em.query(
    `UPDATE jobs SET completed_at = now(), lease_expires_at = NULL,
       error_code = $2, error_message = $3, error_retryable = $4, timing = COALESCE($5, timing)
     WHERE id = $1`,
    [jobId, end.error?.code ?? null, end.error?.message ?? null, end.error?.retryable ?? null, end.timing ? JSON.stringify(end.timing) : null],
  );
  return true;
}
