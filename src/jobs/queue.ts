import { PgBoss } from 'pg-boss';
import type { EntityManager } from 'typeorm';
import { z } from 'zod';
import type { Logger } from '../log.js';

/** A queued job's payload: the row to run. New fields must stay optional: old jobs outlive upgrades. */
export const jobData = z.object({ jobId: z.uuid() });
export type JobData = z.infer<typeof jobData>;

/** How long finished pg-boss jobs are kept (Kiln's own rows keep the history). */
const QUEUE_OPTIONS = { policy: 'standard', deleteAfterSeconds: 7 * 24 * 3600, retentionSeconds: 30 * 24 * 3600 } as const;

export interface JobPolicySettings {
  maxRetries: number;
  retryDelayMs: number;
  /** The hard limit on one attempt; pg-boss fails an attempt still active after it. */
  jobTimeoutSeconds: number;
  /** How long a worker may go silent before its job is handed to another. */
  heartbeatSeconds: number;
}

/**
 * Retry, expiry and heartbeat options for a job, given to each job when it is sent: the
 * submitting process's settings decide, whatever other processes were started with.
 */
export function jobPolicy(s: JobPolicySettings) {
  // pg-boss keeps whole seconds. With a zero delay, retries start at once (useful in tests).
  const retryDelay = Math.ceil(s.retryDelayMs / 1000);
  return {
    retryLimit: s.maxRetries,
    retryDelay,
    retryBackoff: retryDelay > 0,
    ...(retryDelay > 0 ? { retryDelayMax: 3600 } : {}),
    expireInSeconds: s.jobTimeoutSeconds,
    heartbeatSeconds: s.heartbeatSeconds,
  };
}
export type JobPolicy = ReturnType<typeof jobPolicy>;

/**
 * pg-boss over the same Postgres as Kiln's tables. Kiln's worker fetches and settles jobs itself
 * (see worker/), so pg-boss here is the durable queue: priorities, retries with backoff,
 * heartbeats that hand a dead worker's job to another, and expiry.
 */
export async function startQueue(s: { url: string; applicationName: string; poolMax: number; queues: readonly string[]; log: Logger }): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString: s.url,
    application_name: s.applicationName,
    max: s.poolMax,
    connectionTimeoutMillis: 10_000,
    // pg-boss fails jobs whose heartbeat stopped in its supervise pass, which needs both timers:
    // every 2 s, a dead worker's job moves on within heartbeatSeconds + 2 s (and a pass), not at
    // the 60 s default.
    monitorIntervalSeconds: 2,
    superviseIntervalSeconds: 2,
  });
  boss.on('error', (err) => s.log.error({ err }, 'queue error'));
  boss.on('warning', (warning) => s.log.warn({ warning }, 'queue warning'));
  await boss.start();
  for (const queue of s.queues) await boss.createQueue(queue, QUEUE_OPTIONS);
  return boss;
}

/** Lets pg-boss send or settle jobs inside a TypeORM transaction. */
export function inTransaction(em: EntityManager) {
  return {
    async executeSql(text: string, values?: unknown[]) {
      // The structured result: plain query() returns [rows, count] for UPDATE/DELETE.
      const result = await em.queryRunner!.query(text, values, true);
      return { rows: result.records as unknown[] };
    },
  };
}
