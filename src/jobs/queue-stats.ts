import type { DataSource } from 'typeorm';
import type { KindDefinition } from './kind.js';
import { liveWorkers } from './workers.js';

export interface QueueStats {
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  oldestPendingAgeSeconds: number | null;
  averageProcessingSeconds: number | null;
  /** Queues with waiting jobs that no running worker takes, and why. */
  blocked: BlockedQueue[];
}

export interface BlockedQueue {
  queue: string;
  kind: string;
  pending: number;
  oldestPendingAgeSeconds: number;
  reason: string;
}

/**
 * Counts by status (of one kind, or all), how long the oldest pending job has waited, recent run
 * times, and the queues whose jobs wait for a worker that is not running (saying what such a
 * worker needs where the queue's kind says).
 */
export async function queueStats(ds: DataSource, kind?: string | null, kinds: readonly KindDefinition[] = []): Promise<QueueStats> {
  const [row] = await ds.query(
    `SELECT
       count(*) FILTER (WHERE status = 'PENDING')::int AS pending,
       count(*) FILTER (WHERE status = 'RUNNING')::int AS running,
       count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
       count(*) FILTER (WHERE status = 'FAILED')::int AS failed,
       count(*) FILTER (WHERE status = 'CANCELLED')::int AS cancelled,
       extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'PENDING'))::float AS oldest_pending_age_seconds,
       (SELECT avg((timing->>'totalMs')::float) / 1000 FROM (
          SELECT timing FROM jobs WHERE status = 'COMPLETED' AND timing ? 'totalMs' AND ($1::text IS NULL OR kind = $1)
          ORDER BY completed_at DESC LIMIT 100
        ) recent)::float AS average_processing_seconds
     FROM jobs WHERE $1::text IS NULL OR kind = $1`,
    [kind ?? null],
  );
  return {
    pending: row.pending,
    running: row.running,
    completed: row.completed,
    failed: row.failed,
    cancelled: row.cancelled,
    oldestPendingAgeSeconds: row.oldest_pending_age_seconds,
    averageProcessingSeconds: row.average_processing_seconds,
    blocked: row.pending > 0 ? await blockedQueues(ds, kind, kinds) : [],
  };
}

async function blockedQueues(ds: DataSource, kind: string | null | undefined, kinds: readonly KindDefinition[]): Promise<BlockedQueue[]> {
  const waiting: { queue: string; kind: string; pending: number; age: number }[] = await ds.query(
    `SELECT queue, kind, count(*)::int AS pending, extract(epoch FROM now() - min(created_at))::float AS age
     FROM jobs WHERE status = 'PENDING' AND ($1::text IS NULL OR kind = $1) GROUP BY queue, kind ORDER BY queue`,
    [kind ?? null],
  );
  const workers = await liveWorkers(ds);
  const served = new Set(workers.flatMap((w) => w.queues));
  return waiting
    .filter((w) => !served.has(w.queue))
    .map((w) => ({
      queue: w.queue,
      kind: w.kind,
      pending: w.pending,
      oldestPendingAgeSeconds: w.age,
      reason:
        workers.length === 0
          ? 'no worker is running'
          : `none of the ${workers.length} running worker(s) takes ${w.queue} jobs (they take ${[...served].sort().join(', ') || 'nothing'}): ` +
            `start one whose KILN_WORKER_KINDS includes ${w.kind} and ${needs(kinds, w.kind, w.queue)}`,
    }));
}

function needs(kinds: readonly KindDefinition[], kind: string, queue: string): string {
  const said = kinds.find((k) => k.name === kind)?.queueNeeds?.(queue);
  return said ? `that has ${said}` : 'whose execution providers run what the queue needs';
}
