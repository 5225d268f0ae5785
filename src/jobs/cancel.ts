import type { PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import { type Generation, GenerationEntity } from '../db/entities/generation.js';
import { conflict, notFound } from '../errors.js';
import { Channel } from '../events/channels.js';
import { GENERATE_QUEUE, inTransaction } from './queue.js';
import { endGeneration } from './terminal.js';

/**
 * Cancels a generation. PENDING: cancelled at once, its job taken off the queue. RUNNING: its
 * worker is told (NOTIFY) and stops at the next step boundary; the CANCELLED event follows from
 * there (or from the reconciler, should that worker be dead). Already over: CONFLICT.
 */
export async function cancelGeneration(deps: { ds: DataSource; boss: PgBoss }, id: string): Promise<Generation> {
  await deps.ds.transaction(async (em) => {
    const [row] = await em.query('SELECT status, retry_count FROM generations WHERE id = $1 FOR UPDATE', [id]);
    if (!row) throw notFound('generation', id);
    if (row.status === 'PENDING') {
      await endGeneration(em, id, { status: 'CANCELLED', message: 'Cancelled by request', attempt: row.retry_count });
      await deps.boss.cancel(GENERATE_QUEUE, id, { db: inTransaction(em) });
    } else if (row.status === 'RUNNING') {
      await em.query('UPDATE generations SET cancel_requested_at = COALESCE(cancel_requested_at, now()) WHERE id = $1', [id]);
      await em.query(`SELECT pg_notify('${Channel.cancel}', $1)`, [id]);
    } else {
      throw conflict(`generation ${id} is already ${row.status}`);
    }
  });
  return deps.ds.manager.findOneByOrFail(GenerationEntity, { id });
}
