import type { DataSource } from 'typeorm';
import { queryRows } from '../db/sql.js';
import type { Logger } from '../log.js';
import { datasetKey, datasetUploadKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';

/**
 * Dataset uploads nobody completed within the retention period: their files go, then their
 * rows. In that order, so that a crash or a storage failure in between leaves the row to find
 * the files by next time, never files that nothing points to.
 */
export async function expireDatasetUploads(deps: { ds: DataSource; storage: Storage; log: Logger }, retentionMs: number): Promise<void> {
  // Taken as CHECKING first, so that a completion asked for meanwhile is refused (it takes only
  // UPLOADING ones) rather than made READY over files being removed.
  const stale = await queryRows<{ id: string }>(
    deps.ds,
    `UPDATE datasets SET status = 'CHECKING' WHERE id IN (
       SELECT id FROM datasets WHERE status <> 'READY' AND created_at < now() - make_interval(secs => $1) LIMIT 100
     ) RETURNING id`,
    [retentionMs / 1000],
  );
  for (const { id } of stale) {
    try {
      for (const prefix of [datasetUploadKey(id), datasetKey(id)]) await deps.storage.deletePrefix(prefix);
    } catch (err) {
      deps.log.warn({ err, dataset: id }, 'could not remove an expired dataset upload; trying again next time');
      continue;
    }
    await deps.ds.query(`DELETE FROM datasets WHERE id = $1 AND status <> 'READY'`, [id]);
    deps.log.info({ dataset: id }, 'removed a dataset upload that was never completed');
  }
}
