import type { PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import { retriedTransaction } from '../db/retried-transaction.js';
import { queryRows } from '../db/sql.js';
import { notFound } from '../errors.js';
import { Channel } from '../events/channels.js';
import type { Logger } from '../log.js';
import { jobKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import { inTransaction } from './queue.js';

/**
 * Deletes a job of any kind with its events, attempts, outputs and files. A running one is told
 * to stop first; whatever its worker still tries to write is refused, since the row is gone, and
 * the worker removes its own partial files. Streams watching it end.
 */
export async function deleteJob(deps: { ds: DataSource; boss: PgBoss; storage: Storage; log: Logger }, id: string): Promise<void> {
  const keys = await retriedTransaction(deps.ds, async (em) => {
    const outputs = await queryRows<{ storage_key: string }>(em, 'SELECT storage_key FROM job_outputs WHERE job_id = $1', [id]);
    const [row] = await queryRows(em, 'DELETE FROM jobs WHERE id = $1 RETURNING status, queue', [id]);
    if (!row) throw notFound('job', id);
    if (row.status === 'PENDING' || row.status === 'RUNNING') {
      await deps.boss.cancel(row.queue, id, { db: inTransaction(em) });
      await em.query(`SELECT pg_notify('${Channel.cancel}', $1)`, [id]);
    }
    await em.query(`SELECT pg_notify('${Channel.deleted}', $1)`, [id]);
    return outputs.map((o) => o.storage_key);
  });
  try {
    // Outputs are named one by one as well: those of jobs made before jobs had a folder of their own live elsewhere.
    for (const key of keys) await deps.storage.delete(key);
    await deps.storage.deletePrefix(jobKey(id));
  } catch (err) {
    // The row is gone; a file left behind is only wasted space, and the prefix names it.
    deps.log.warn({ err, jobId: id }, "could not remove a deleted job's files");
  }
}
