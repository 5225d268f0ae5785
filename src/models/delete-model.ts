import type { DataSource } from 'typeorm';
import { conflict, notFound } from '../errors.js';
import type { Logger } from '../log.js';
import type { Storage } from '../storage/storage.js';

/**
 * Deletes a model: its files go, its row stays (marked deleted) for the jobs that name it.
 * Refused with CONFLICT, naming them, while pending or running jobs use it, or LoRA
 * adapters are made for it; the built-in model cannot be deleted.
 */
export async function deleteModel(deps: { ds: DataSource; storage: Storage; log: Logger }, id: string): Promise<void> {
  const storageKey = await deps.ds.transaction(async (em) => {
    // Locked against generate, which reads the model under a share lock.
    const [model] = await em.query('SELECT name, builtin, storage_key FROM models WHERE id = $1 AND deleted_at IS NULL FOR UPDATE', [id]);
    if (!model) throw notFound('model', id);
    if (model.builtin) throw conflict(`model "${model.name}" is Kiln's built-in model and cannot be deleted`);
    const busy: { id: string; kind: string }[] = await em.query(
      `SELECT j.id, j.kind FROM jobs j JOIN job_models m ON m.job_id = j.id
       WHERE m.model_id = $1 AND j.status IN ('PENDING', 'RUNNING') ORDER BY j.created_at LIMIT 6`,
      [id],
    );
    if (busy.length) {
      const list = busy.slice(0, 5).map((j) => `${j.id} (${j.kind})`).join(', ') + (busy.length > 5 ? ', …' : '');
      throw conflict(`model "${model.name}" is in use by pending or running jobs: ${list}`);
    }
    const loras: { name: string }[] = await em.query(`SELECT name FROM models WHERE base_model_id = $1 AND deleted_at IS NULL ORDER BY name LIMIT 6`, [id]);
    if (loras.length) throw conflict(`model "${model.name}" has LoRA adapters made for it; delete them first: ${loras.map((l) => l.name).join(', ')}`);
    await em.query('UPDATE models SET deleted_at = now(), is_default = false WHERE id = $1', [id]);
    return model.storage_key as string;
  });
  await deps.storage.deletePrefix(storageKey).catch((err) => deps.log.warn({ err, model: id }, 'could not remove a deleted model\'s files'));
}
