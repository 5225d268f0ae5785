import type { Shared } from '../shared.js';
import { AddressPolicy } from './address-policy.js';
import { createDeliveryQueue } from './delivery-queue.js';
import { WebhookPoster } from './http-post.js';
import { WebhookSender } from './webhook-sender.js';

/** Webhooks in this process: the delivery queue, and the sender that fills it and works it. */
export async function startWebhooks(shared: Shared, opts: { baseUrl: () => string; userAgent: string }) {
  const { config, ds, boss, storage, log, listener } = shared;
  await createDeliveryQueue(boss, config.webhooks);
  const poster = new WebhookPoster(new AddressPolicy(config.webhooks.allow), config.webhooks.timeoutMs);
  const sender = new WebhookSender(
    { ds, boss, storage, poster, settings: config.webhooks, baseUrl: opts.baseUrl, userAgent: opts.userAgent, log: log.child({ component: 'webhooks' }) },
    listener,
  );
  sender.start();
  return {
    async close() {
      await sender.stop();
      poster.close();
    },
  };
}
