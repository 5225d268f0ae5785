import { z } from 'zod';

/** What a webhook can be told about a job. */
export const WEBHOOK_EVENTS = ['STARTED', 'PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** What a webhook hears when it names no events: how jobs end. */
export const TERMINAL_EVENTS: readonly WebhookEvent[] = ['COMPLETED', 'FAILED', 'CANCELLED'];

export const webhookEvent = z.enum(WEBHOOK_EVENTS).meta({
  graphql: 'WebhookEvent',
  description:
    'STARTED: an attempt began running. PROGRESS: a later step of a running attempt (at most one per 500 ms per job and webhook). COMPLETED, FAILED, CANCELLED: how the job ended.',
});

/** Where deliveries may go: http(s) only, and no credentials in the URL (they would travel in logs). */
export const webhookUrl = z
  .string()
  .trim()
  .max(2048, 'must be at most 2048 characters')
  .superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute http or https URL' });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: 'must be an http or https URL' });
    else if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'must not carry a user name or password' });
  });

export const webhookEvents = z
  .array(webhookEvent)
  .min(1, 'must name at least one event')
  .max(WEBHOOK_EVENTS.length, `must name at most ${WEBHOOK_EVENTS.length} events`);

/** A job's own webhook, given with its submission: where its events go, and which. */
export const webhookOption = z
  .object({
    url: webhookUrl.describe('http(s) URL each delivery is POSTed to'),
    events: webhookEvents.default([...TERMINAL_EVENTS]).describe('Which events to deliver; by default how the job ends.'),
  })
  .meta({ graphql: 'WebhookInput', description: "Where a job's events are POSTed, signed as Standard Webhooks (see `jobWebhookSecret`)." });
export type WebhookOption = z.output<typeof webhookOption>;
