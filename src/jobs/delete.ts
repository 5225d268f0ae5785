import type { PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import { notFound } from '../errors.js';
import { Channel } from '../events/channels.js';
import type { Logger } from '../log.js';
import type { Storage } from '../storage/storage.js';
import { GENERATE_QUEUE, inTransaction } from './queue.js';
import { queryRows } from '../db/sql.js';

/** Where all of a generation's files live (each attempt has a folder under it). */
export const generationPrefix = (id: string) => `generations/${id}`;

/**
 * Deletes a generation with its events, attempts, images and files. A running one is told to
 * stop first; whatever its worker still tries to write is refused, since the row is gone, and
 * the worker removes its own partial files. Streams watching it end.
 */
export async function deleteGeneration(deps: { ds: DataSource; boss: PgBoss; storage: Storage; log: Logger }, id: string): Promise<void> {
  await deps.ds.transaction(async (em) => {
    const [row] = await queryRows(em, 'DELETE FROM generations WHERE id = $1 RETURNING status', [id]);
    if (!row) throw notFound('generation', id);
    if (row.status === 'PENDING' || row.status === 'RUNNING') {
      await deps.boss.cancel(GENERATE_QUEUE, id, { db: inTransaction(em) });
      await em.query(`SELECT pg_notify('${Channel.cancel}', $1)`, [id]);
    }
    await em.query(`SELECT pg_notify('${Channel.deleted}', $1)`, [id]);
  });
  await deps.storage.deletePrefix(generationPrefix(id)).catch((err) => {
    // The row is gone; a file left behind is only wasted space, and the prefix names it.
    deps.log.warn({ err, generationId: id }, 'could not remove a deleted generation\'s files');
  });
}
