import type { Generation } from '../db/entities/generation.js';
import { badInput } from '../errors.js';
import { generateInputSchema, type ValidGenerateInput } from '../jobs/generate-input.js';
import { type Submission, submitGenerations } from '../jobs/submit.js';
import type { Context } from '../server/context.js';
import { builder } from './builder.js';
import { GenerationRef } from './generation.js';
import { SchedulerEnum } from './scheduler.js';

export const GenerateInputRef = builder
  .inputType('GenerateInput', {
    fields: (t) => ({
      prompt: t.string({ required: true, description: '1..500 characters after trimming' }),
      negativePrompt: t.string({ description: 'at most 500 characters' }),
      modelId: t.id({ description: 'default: the default base model' }),
      loraId: t.id(),
      loraWeight: t.float({ description: '0..2, default 1 (0.8 is common)' }),
      numImages: t.int({ description: '1..4, default 1' }),
      steps: t.int({ description: '1..150, default depends on the model' }),
      guidanceScale: t.float({ description: '0..30' }),
      width: t.int({ description: '64..2048, multiple of 8' }),
      height: t.int({ description: '64..2048, multiple of 8' }),
      seed: t.float({ description: '0..4294967295; random when omitted, always recorded' }),
      priority: t.int({ description: 'higher runs first, default 0' }),
      deadlineSeconds: t.int({ description: 'not started within this many seconds: CANCELLED, never run' }),
      previews: t.boolean({ description: 'GENERATING events carry a small preview image (default true)' }),
      scheduler: t.field({ type: SchedulerEnum, description: "Stable Diffusion models: the sampler (default: the model's own)" }),
    }),
  })
  .validate(generateInputSchema);

const BatchResultRef = builder.objectRef<{ generations: Generation[]; estimatedTotalSeconds: number }>('BatchResult').implement({
  fields: (t) => ({
    generations: t.field({ type: [GenerationRef], resolve: (r) => r.generations }),
    estimatedTotalSeconds: t.exposeFloat('estimatedTotalSeconds', {
      description:
        "Time to run them one after another (queue wait not included), from the model's recent runs; before it has any, 1 s + 0.1 s per step at 512² per image.",
    }),
  }),
});

const IDEMPOTENCY_KEY =
  'The same key with the same input returns the first result instead of new jobs; the same key with another input is CONFLICT. Keys are kept 24 hours by default (KILN_IDEMPOTENCY_TTL_H).';

function submission(ctx: Context, operation: string, inputs: Submission['inputs'], key: string | null | undefined): Submission {
  return {
    inputs,
    // Keys are per API key: two clients' keys never meet.
    ...(key ? { idempotency: { scope: ctx.client.apiKey ?? '', key, operation, ttlHours: ctx.services.config.jobs.idempotencyTtlHours } } : {}),
  };
}

builder.mutationFields((t) => ({
  generate: t.field({
    type: GenerationRef,
    description: 'Queues one generation: its row, QUEUED event and job are written in one transaction.',
    args: { input: t.arg({ type: GenerateInputRef, required: true }), idempotencyKey: t.arg.string({ required: false, description: IDEMPOTENCY_KEY }) },
    resolve: async (_, { input, idempotencyKey }, ctx) => {
      await ctx.services.rateLimiter.take(ctx.client, 1);
      const { generations } = await submitGenerations(ctx.services, submission(ctx, 'generate', [{ input, field: 'input' }], idempotencyKey));
      return generations[0]!;
    },
  }),
  generateBatch: t.field({
    type: BatchResultRef,
    description: 'Queues 1..10 generations (KILN_MAX_BATCH), all or nothing: every input is validated before anything is written.',
    args: { inputs: t.arg({ type: [GenerateInputRef], required: true }), idempotencyKey: t.arg.string({ required: false, description: IDEMPOTENCY_KEY }) },
    resolve: async (_, { inputs, idempotencyKey }, ctx) => {
      const max = ctx.services.config.jobs.maxBatch;
      if (inputs.length < 1 || inputs.length > max) throw badInput('inputs', `must hold 1 to ${max} inputs`);
      await ctx.services.rateLimiter.take(ctx.client, inputs.length);
      const items = inputs.map((input: ValidGenerateInput, i: number) => ({ input, field: `inputs.${i}` }));
      return submitGenerations(ctx.services, submission(ctx, 'generateBatch', items, idempotencyKey));
    },
  }),
}));
