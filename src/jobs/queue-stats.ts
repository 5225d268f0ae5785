import type { DataSource } from 'typeorm';

export interface QueueStats {
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  oldestPendingAgeSeconds: number | null;
  averageProcessingSeconds: number | null;
}

/** Counts by status, how long the oldest pending generation has waited, and recent run times. */
export async function queueStats(ds: DataSource): Promise<QueueStats> {
  const [row] = await ds.query(
    `SELECT
       count(*) FILTER (WHERE status = 'PENDING')::int AS pending,
       count(*) FILTER (WHERE status = 'RUNNING')::int AS running,
       count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
       count(*) FILTER (WHERE status = 'FAILED')::int AS failed,
       count(*) FILTER (WHERE status = 'CANCELLED')::int AS cancelled,
       extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'PENDING'))::float AS oldest_pending_age_seconds,
       (SELECT avg((timing->>'totalMs')::float) / 1000 FROM (
          SELECT timing FROM generations WHERE status = 'COMPLETED' AND timing ? 'totalMs' ORDER BY completed_at DESC LIMIT 100
        ) recent)::float AS average_processing_seconds
     FROM generations`,
  );
  return {
    pending: row.pending,
    running: row.running,
    completed: row.completed,
    failed: row.failed,
    cancelled: row.cancelled,
    oldestPendingAgeSeconds: row.oldest_pending_age_seconds,
    averageProcessingSeconds: row.average_processing_seconds,
  };
}
