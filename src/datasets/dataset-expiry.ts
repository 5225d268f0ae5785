import type { DataSource } from 'typeorm';
import { queryRows } from '../db/sql.js';
import type { Logger } from '../log.js';
import { datasetKey, datasetUploadKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';

/** Dataset uploads nobody completed within the retention period: their rows and files go. */
export async function expireDatasetUploads(deps: { ds: DataSource; storage: Storage; log: Logger }, retentionMs: number): Promise<void> {
  const stale = await queryRows<{ id: string }>(
    deps.ds,
    `DELETE FROM datasets WHERE id IN (
       SELECT id FROM datasets WHERE status <> 'READY' AND created_at < now() - make_interval(secs => $1) LIMIT 100
     ) RETURNING id`,
    [retentionMs / 1000],
  );
  for (const { id } of stale) {
    for (const prefix of [datasetUploadKey(id), datasetKey(id)]) {
      await deps.storage.deletePrefix(prefix).catch((err) => deps.log.warn({ err, dataset: id }, 'could not remove an expired dataset upload'));
    }
    deps.log.info({ dataset: id }, 'removed a dataset upload that was never completed');
  }
}
