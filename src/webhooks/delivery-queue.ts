import type { PgBoss } from 'pg-boss';
import { z } from 'zod';
import type { WebhookSettings } from '../config.js';

/**
 * The pg-boss queue deliveries wait in: Kiln's own, not a kind's. Each delivery is one job there,
 * retried by failing it and setting when it next starts.
 */
export const DELIVERY_QUEUE = 'kiln.webhook-deliveries';

/** A queued delivery's payload. New fields must stay optional: queued jobs outlive upgrades. */
export const deliveryData = z.object({ deliveryId: z.uuid() });
export type DeliveryData = z.infer<typeof deliveryData>;

export async function createDeliveryQueue(boss: PgBoss, s: WebhookSettings): Promise<void> {
  // Jobs may wait out the whole retry window, and then some for a redelivery.
  await boss.createQueue(DELIVERY_QUEUE, { policy: 'standard', deleteAfterSeconds: 7 * 24 * 3600, retentionSeconds: s.retryForSeconds + 7 * 24 * 3600 });
}

/**
 * Options of a delivery's job. Kiln schedules each retry itself; pg-boss's own retries (with its
 * backoff) only come into play when a process died holding the job, which then expires.
 */
export function deliveryJobOptions(s: WebhookSettings) {
  return { retryLimit: 100_000, retryDelay: 5, retryBackoff: true, retryDelayMax: 3600, expireInSeconds: Math.ceil(s.timeoutMs / 1000) + 30 };
}
