import type { DataSource } from 'typeorm';
import type { Logger } from '../../log.js';
import { modelKey, trainingCheckpointsKey } from '../../storage/keys.js';
import type { Storage } from '../../storage/storage.js';

/**
 * Files a training leaves in storage, removed once it has been over for the retention period:
 * its checkpoints, and, for one that did not complete, an adapter stored as it was about to
 * (a trained adapter lives at `models/<training id>/`; without that model row it is no model).
 * Each training is swept once (`training_sweeps`); deleting the training removes them at once.
 */
export async function sweepTrainingFiles(deps: { ds: DataSource; storage: Storage; log: Logger }, retentionMs: number): Promise<void> {
  const due: { id: string; has_model: boolean }[] = await deps.ds.query(
    `SELECT j.id, EXISTS (SELECT 1 FROM models m WHERE m.id = j.id) AS has_model
     FROM jobs j
     WHERE j.kind = 'training' AND j.status IN ('COMPLETED', 'FAILED', 'CANCELLED')
       AND j.completed_at < now() - make_interval(secs => $1)
       AND NOT EXISTS (SELECT 1 FROM training_sweeps s WHERE s.job_id = j.id)
     ORDER BY j.completed_at LIMIT 50`,
    [retentionMs / 1000],
  );
  for (const job of due) {
    try {
      await deps.storage.deletePrefix(trainingCheckpointsKey(job.id));
      if (!job.has_model) await deps.storage.deletePrefix(modelKey(job.id));
      await deps.ds.query('INSERT INTO training_sweeps (job_id) VALUES ($1) ON CONFLICT DO NOTHING', [job.id]);
    } catch (err) {
      deps.log.warn({ err, jobId: job.id }, "could not remove a finished training's files; trying again next time");
    }
  }
}
