import type { DataSource } from 'typeorm';
import { conflict, notFound } from '../errors.js';
import type { Logger } from '../log.js';
import type { Storage } from '../storage/storage.js';
import { removeDataset } from './dataset-uploads.js';

/**
 * Deletes a dataset (ready, or an upload not completed) with all its files at once. Refused with
 * CONFLICT, naming them, while pending or running trainings use it (a training names its dataset
 * in `params.datasetId`). An upload being checked may go too: its check then stores nothing.
 */
export async function deleteDataset(deps: { ds: DataSource; storage: Storage; log: Logger }, id: string): Promise<void> {
  await deps.ds.transaction(async (em) => {
    // Locked against trainLora, which reads the dataset under a share lock.
    const [dataset] = await em.query('SELECT name FROM datasets WHERE id = $1 FOR UPDATE', [id]);
    if (!dataset) throw notFound('dataset', id);
    const busy: { id: string; status: string }[] = await em.query(
      `SELECT id, status FROM jobs WHERE kind = 'training' AND params->>'datasetId' = $1 AND status IN ('PENDING', 'RUNNING') ORDER BY created_at LIMIT 6`,
      [id],
    );
    if (busy.length) {
      const list = busy.slice(0, 5).map((j) => `${j.id} (${j.status.toLowerCase()})`).join(', ') + (busy.length > 5 ? ', …' : '');
      throw conflict(`dataset "${dataset.name}" is in use by trainings: ${list}`);
    }
  });
  await removeDataset(deps, id);
}
