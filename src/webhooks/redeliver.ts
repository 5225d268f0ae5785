import type { PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import type { WebhookSettings } from '../config.js';
import { type WebhookDelivery, WebhookDeliveryEntity } from '../db/entities/webhook-delivery.js';
import { conflict, notFound } from '../errors.js';
import { Channel } from '../events/channels.js';
import { inTransaction } from '../jobs/queue.js';
import { DELIVERY_QUEUE, type DeliveryData, deliveryJobOptions } from './delivery-queue.js';

/**
 * Sends a finished delivery (delivered or given up) again, now, with the same `webhook-id`, and
 * retries it as a new one would be. CONFLICT while it is still being delivered, or while its
 * subscription is disabled.
 */
export async function redeliver(ds: DataSource, boss: PgBoss, s: WebhookSettings, id: string): Promise<WebhookDelivery> {
  await ds.transaction(async (em) => {
    const [row] = await em.query(
      `SELECT d.status, d.next_attempt_at, e.id AS endpoint_id, e.disabled_at, e.disabled_reason
       FROM webhook_deliveries d LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1 FOR UPDATE OF d`,
      [id],
    );
    if (!row) throw notFound('webhook delivery', id);
    if (row.status === 'PENDING') throw conflict(`webhook delivery ${id} is still being delivered`);
    if (row.disabled_at) throw conflict(`webhook ${row.endpoint_id} is disabled (${row.disabled_reason}); enable it first`);
    await em.query(
      `UPDATE webhook_deliveries SET status = 'PENDING', next_attempt_at = now(), give_up_at = now() + make_interval(secs => $2),
         last_error = NULL, last_status_code = NULL, finished_at = NULL
       WHERE id = $1`,
      [id, s.retryForSeconds],
    );
    await boss.send(DELIVERY_QUEUE, { deliveryId: id } satisfies DeliveryData, { ...deliveryJobOptions(s), db: inTransaction(em) });
    await em.query(`SELECT pg_notify('${Channel.webhooks}', '')`);
  });
  return ds.manager.findOneByOrFail(WebhookDeliveryEntity, { id });
}
