import { z } from 'zod';
import { webhookOption } from '../webhooks/webhook-option.js';

/**
 * What every job takes beside its kind's parameters, whatever the kind: its place in the queue,
 * how long it may wait there, and where its events are sent.
 */
export const jobOptions = z.object({
  priority: z
    .number()
    .int()
    .min(-100, 'must be between -100 and 100')
    .max(100, 'must be between -100 and 100')
    .nullish()
    .describe('-100..100, higher runs first; default 0. Within a queue, equal priorities run oldest first.'),
  deadlineSeconds: z
    .number()
    .int()
    .min(1, 'must be at least 1')
    .max(30 * 24 * 3600, 'must be at most 30 days')
    .nullish()
    .describe('1..2592000: not started within this many seconds after submission, it is CANCELLED (DEADLINE_EXCEEDED) and never runs.'),
  webhook: webhookOption.nullish(),
});
export type JobOptions = z.output<typeof jobOptions>;
