import type { DataSource, EntityManager } from 'typeorm';
import type { WorkerRow } from '../db/entities/worker.js';
import { WorkerEntity } from '../db/entities/worker.js';

/** How often a worker reports itself, and how long a silent one still counts as running. */
export const WORKER_REPORT_MS = 5_000;
const LIVE_SECONDS = 15;

export type WorkerReport = Omit<WorkerRow, 'startedAt' | 'heartbeatAt'>;

/** Records what a worker is and does now; its heartbeat with it. */
export async function reportWorker(ds: DataSource, w: WorkerReport): Promise<void> {
  await ds.query(
    `INSERT INTO workers (id, host, pid, kinds, queues, providers, models_loaded, current_jobs)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (id) DO UPDATE SET kinds = $4, queues = $5, providers = $6, models_loaded = $7, current_jobs = $8, heartbeat_at = now()`,
    [w.id, w.host, w.pid, w.kinds, w.queues, w.providers, w.modelsLoaded, w.currentJobs],
  );
}

/** A worker that stopped cleanly is gone at once, not after its heartbeat runs out. */
export async function removeWorker(ds: DataSource, id: string): Promise<void> {
  await ds.query('DELETE FROM workers WHERE id = $1', [id]);
}

/** Workers whose last report is recent: the ones running now. */
export async function liveWorkers(db: DataSource | EntityManager): Promise<WorkerRow[]> {
  const manager = 'manager' in db ? db.manager : db;
  return manager
    .createQueryBuilder(WorkerEntity, 'w')
    .where(`w.heartbeatAt > now() - make_interval(secs => :live)`, { live: LIVE_SECONDS })
    .orderBy('w.startedAt')
    .getMany();
}

/** Forgets workers silent for a day (killed ones never remove their row). */
export async function pruneWorkers(ds: DataSource): Promise<void> {
  await ds.query(`DELETE FROM workers WHERE heartbeat_at < now() - interval '1 day'`);
}
