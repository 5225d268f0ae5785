import type { Job } from '../db/entities/job.js';
import { badInput } from '../errors.js';
import { splitInput } from '../jobs/input-schema.js';
import type { KindDefinition } from '../jobs/kind.js';
import { submitJobs } from '../jobs/submit.js';
import type { Context } from '../server/context.js';
import { recordJobWebhook } from '../webhooks/job-webhook.js';

export const IDEMPOTENCY_KEY =
  'The same key with the same input returns the first result instead of new jobs; the same key with another input is CONFLICT. Keys are kept 24 hours by default (KILN_IDEMPOTENCY_TTL_H).';

/**
 * Submits validated inputs as jobs of a kind, for a kind's mutations: rate limited per client
 * (each input counts), idempotent per API key, all or nothing.
 */
export async function submit(
  ctx: Context,
  kind: KindDefinition,
  operation: string,
  items: { input: Record<string, unknown>; field: string }[],
  idempotencyKey: string | null | undefined,
): Promise<{ jobs: Job[]; estimatedTotalSeconds: number }> {
  await ctx.services.rateLimiter.take(ctx.client, items.length);
  return submitJobs({ ...ctx.services, onQueued: recordJobWebhook }, {
    kind,
    inputs: items.map(({ input, field }) => {
      const { params, options } = splitInput(input);
      return { input: params, options, field };
    }),
    // Keys are per API key: two clients' keys never meet.
    ...(idempotencyKey
      ? { idempotency: { scope: ctx.client.apiKey ?? '', key: idempotencyKey, operation, ttlHours: ctx.services.config.jobs.idempotencyTtlHours } }
      : {}),
  });
}

/** A batch holds 1..KILN_MAX_BATCH inputs; their error paths are `inputs.<i>` (from 0). */
export function batchItems(ctx: Context, inputs: Record<string, unknown>[]) {
  const max = ctx.services.config.jobs.maxBatch;
  if (inputs.length < 1 || inputs.length > max) throw badInput('inputs', `must hold 1 to ${max} inputs`);
  return inputs.map((input, i) => ({ input, field: `inputs.${i}` }));
}
