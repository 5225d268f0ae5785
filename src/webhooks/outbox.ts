import type { PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import type { WebhookSettings } from '../config.js';
import { queryRows } from '../db/sql.js';
import { inTransaction } from '../jobs/queue.js';
import { DELIVERY_QUEUE, type DeliveryData, deliveryJobOptions } from './delivery-queue.js';

const BATCH = 200;

/**
 * Puts the deliveries the trigger on job_events wrote onto the delivery queue, each as a job
 * whose id is the delivery's, in one transaction with marking them queued: a process that dies
 * half-way leaves them for the next one, and none is queued twice. Stamps when retries end,
 * from this process's settings. Returns how many it queued.
 */
export async function queueNewDeliveries(ds: DataSource, boss: PgBoss, s: WebhookSettings): Promise<number> {
  let total = 0;
  for (;;) {
    const queued = await ds.transaction(async (em) => {
      const rows = await queryRows<{ id: string }>(em, 'SELECT id FROM webhook_deliveries WHERE NOT queued ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED', [BATCH]);
      if (!rows.length) return 0;
      const ids = rows.map((r) => r.id);
      const options = deliveryJobOptions(s);
      await boss.insert(
        DELIVERY_QUEUE,
        ids.map((id) => ({ id, data: { deliveryId: id } satisfies DeliveryData, ...options })),
        { db: inTransaction(em) },
      );
      await em.query(
        `UPDATE webhook_deliveries SET queued = true, next_attempt_at = now(), give_up_at = created_at + make_interval(secs => $2) WHERE id = ANY($1)`,
        [ids, s.retryForSeconds],
      );
      return ids.length;
    });
    total += queued;
    if (queued < BATCH) return total;
  }
}
