import type { PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import type { Logger } from '../log.js';
import type { KindDefinition } from './kind.js';
import { inTransaction, type JobData, type JobPolicy } from './queue.js';

/** The one queue Kiln had before jobs came in kinds, with `{ generationId }` payloads. */
const LEGACY_QUEUE = 'kiln-generate';

/**
 * Moves jobs still waiting in the queue of an older Kiln into the queue their job now names, so
 * an upgrade loses none. Jobs that an old worker held when it stopped come back to waiting once
 * their heartbeat runs out, and are moved on a later run. A housekeeping task of the reconciler.
 */
export async function moveLegacyJobs(ds: DataSource, boss: PgBoss, kinds: readonly KindDefinition[], policyOf: (kind: KindDefinition) => JobPolicy, log: Logger): Promise<void> {
  if (!(await boss.getQueue(LEGACY_QUEUE))) return;
  const waiting = await boss.findJobs<{ generationId?: string }>(LEGACY_QUEUE, { queued: true, limit: 100 });
  for (const old of waiting) {
    await ds.transaction(async (em) => {
      const [row] = await em.query(`SELECT kind, queue, priority, affinity FROM jobs WHERE id = $1 AND status IN ('PENDING', 'RUNNING') FOR UPDATE`, [old.data.generationId ?? old.id]);
      const db = inTransaction(em);
      await boss.deleteJob(LEGACY_QUEUE, old.id, { db });
      const kind = row && kinds.find((k) => k.name === row.kind);
      if (!kind) return;
      const data: JobData = { jobId: old.data.generationId ?? old.id };
      await boss.send(row.queue, data, { ...policyOf(kind), id: data.jobId, priority: row.priority, ...(row.affinity ? { group: { id: row.affinity } } : {}), db });
    });
  }
  if (waiting.length) log.info({ moved: waiting.length }, 'moved jobs queued by an older Kiln to their kind\'s queue');
}
