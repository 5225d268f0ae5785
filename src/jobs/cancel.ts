import type { PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import { type Job, JobEntity } from '../db/entities/job.js';
import { retriedTransaction } from '../db/retried-transaction.js';
import { conflict, notFound } from '../errors.js';
import { Channel } from '../events/channels.js';
import { inTransaction } from './queue.js';
import { endJob } from './terminal.js';

/**
 * Cancels a job of any kind. PENDING: cancelled at once, its pg-boss job taken off the queue.
 * RUNNING: its worker is told (NOTIFY) and stops at the next step boundary; the CANCELLED event
 * follows from there (or from the reconciler, should that worker be dead). Already over: CONFLICT.
 */
export async function cancelJob(deps: { ds: DataSource; boss: PgBoss }, id: string): Promise<Job> {
  await retriedTransaction(deps.ds, async (em) => {
    const [row] = await em.query('SELECT status, retry_count, queue FROM jobs WHERE id = $1 FOR UPDATE', [id]);
    if (!row) throw notFound('job', id);
    if (row.status === 'PENDING') {
      await endJob(em, id, { status: 'CANCELLED', message: 'Cancelled by request', attempt: row.retry_count });
      await deps.boss.cancel(row.queue, id, { db: inTransaction(em) });
    } else if (row.status === 'RUNNING') {
      await em.query('UPDATE jobs SET cancel_requested_at = COALESCE(cancel_requested_at, now()) WHERE id = $1', [id]);
      await em.query(`SELECT pg_notify('${Channel.cancel}', $1)`, [id]);
    } else {
      throw conflict(`job ${id} is already ${row.status}`);
    }
  });
  return deps.ds.manager.findOneByOrFail(JobEntity, { id });
}
