import { type Job, JobEntity } from '../../db/entities/job.js';
import { notFound } from '../../errors.js';
import { cancelJob } from '../../jobs/cancel.js';
import { deleteJob } from '../../jobs/delete.js';
import { inputSchemaOf } from '../../jobs/input-schema.js';
import { builder } from '../../schema/builder.js';
import { isUuid } from '../../schema/ids.js';
import { JobRef, jobTypeFor } from '../../schema/job.js';
import { GenerationStatusEnum } from '../../schema/job-event.js';
import { ModelRef } from '../../schema/model.js';
import { ImageRef } from '../../schema/outputs.js';
import { applyKeyset, keysetConnection } from '../../schema/pagination.js';
import { inputTypeFromZod } from '../../schema/params-input.js';
import { SchedulerEnum } from '../../schema/scheduler.js';
import { batchItems, IDEMPOTENCY_KEY, submit } from '../../schema/submission.js';
import { imageKind } from './kind.js';
import type { ImageParams } from './params.js';

type Generation = Job & { params: ImageParams };
const param = <K extends keyof ImageParams>(key: K) => (g: Generation) => g.params[key];

export const GenerateInputRef = inputTypeFromZod('GenerateInput', inputSchemaOf(imageKind), { Scheduler: SchedulerEnum }, 'An image generation: the prompt, and whatever else should not be the model\'s default.');

/** An image generation: the contract's Generation, a job of kind `image`. */
export const GenerationRef = builder.objectRef<Generation>('Generation').implement({
  description: 'An image generation (a job of kind "image").',
  interfaces: [JobRef],
  fields: (t) => ({
    prompt: t.string({ resolve: param('prompt') }),
    negativePrompt: t.string({ nullable: true, resolve: param('negativePrompt') }),
    model: t.field({ type: ModelRef, resolve: async (g, _, ctx) => (await ctx.loaders.model.load(g.params.modelId))! }),
    lora: t.field({ type: ModelRef, nullable: true, resolve: (g, _, ctx) => (g.params.loraId ? ctx.loaders.model.load(g.params.loraId) : null) }),
    loraWeight: t.float({ nullable: true, resolve: param('loraWeight') }),
    numImages: t.int({ resolve: param('numImages') }),
    steps: t.int({ resolve: param('steps') }),
    guidanceScale: t.float({ resolve: param('guidanceScale') }),
    width: t.int({ resolve: param('width') }),
    height: t.int({ resolve: param('height') }),
    seed: t.float({ resolve: param('seed') }),
    previews: t.boolean({ resolve: param('previews') }),
    scheduler: t.field({ type: SchedulerEnum, nullable: true, resolve: param('scheduler') }),
    originalSize: t.intList({ nullable: true, description: 'SDXL: [height, width]', resolve: param('originalSize') }),
    cropsCoordsTopLeft: t.intList({ nullable: true, description: 'SDXL: [top, left]', resolve: param('cropsCoordsTopLeft') }),
    targetSize: t.intList({ nullable: true, description: 'SDXL: [height, width]', resolve: param('targetSize') }),
    images: t.field({
      type: [ImageRef],
      description: 'Its outputs, which are all images.',
      resolve: async (g, _, ctx) => (await ctx.loaders.outputs.load(g.id)).filter((o) => o.mediaType === 'image'),
    }),
  }),
});
jobTypeFor(imageKind.name, 'Generation');

const BatchResultRef = builder.objectRef<{ jobs: Job[]; estimatedTotalSeconds: number }>('BatchResult').implement({
  fields: (t) => ({
    generations: t.field({ type: [GenerationRef], resolve: (r) => r.jobs as Generation[] }),
    estimatedTotalSeconds: t.exposeFloat('estimatedTotalSeconds', {
      description:
        "Time to run them one after another (queue wait not included), from each model's recent runs; before it has any, 1 s + 0.1 s per step at 512² per image.",
    }),
  }),
});

/** An image job by id: null for a job of another kind, or none. */
const loadGeneration = async (id: string, load: (id: string) => Promise<Job | undefined>) => {
  const job = isUuid(id) ? await load(id) : undefined;
  return job?.kind === imageKind.name ? (job as Generation) : undefined;
};

builder.mutationFields((t) => ({
  generate: t.field({
    type: GenerationRef,
    description: 'Queues one image generation: its row, QUEUED event and job are written in one transaction.',
    args: { input: t.arg({ type: GenerateInputRef, required: true }), idempotencyKey: t.arg.string({ required: false, description: IDEMPOTENCY_KEY }) },
    resolve: async (_, { input, idempotencyKey }, ctx) => {
      const { jobs } = await submit(ctx, imageKind, 'generate', [{ input, field: 'input' }], idempotencyKey);
      return jobs[0] as Generation;
    },
  }),
  generateBatch: t.field({
    type: BatchResultRef,
    description:
      'Queues 1..10 image generations (KILN_MAX_BATCH), all or nothing: every input is validated before anything is written; errors name the input from 0 (`inputs.2.prompt` is the third).',
    args: { inputs: t.arg({ type: [GenerateInputRef], required: true }), idempotencyKey: t.arg.string({ required: false, description: IDEMPOTENCY_KEY }) },
    resolve: (_, { inputs, idempotencyKey }, ctx) => submit(ctx, imageKind, 'generateBatch', batchItems(ctx, inputs), idempotencyKey),
  }),
  cancelGeneration: t.field({
    type: GenerationRef,
    description:
      'PENDING: cancelled at once. RUNNING: stops at the next step boundary (cancelRequested is true until then; the CANCELLED event reaches every subscriber). Already over: CONFLICT. Unknown: NOT_FOUND. (cancelJob does the same for a job of any kind.)',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_, { id }, ctx) => {
      if (!(await loadGeneration(id, (i) => ctx.loaders.job.load(i)))) throw notFound('generation', id);
      return (await cancelJob(ctx.services, id)) as Generation;
    },
  }),
  deleteGeneration: t.id({
    description: 'Deletes a generation with its events, images and stored files; a running one is stopped first.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_, { id }, ctx) => {
      if (!(await loadGeneration(id, (i) => ctx.loaders.job.load(i)))) throw notFound('generation', id);
      await deleteJob(ctx.services, id);
      return id;
    },
  }),
}));

builder.queryFields((t) => ({
  generations: t.connection(
    {
      type: GenerationRef,
      description: 'Image generations, newest first; of one status, or made with one model (base or LoRA).',
      args: { status: t.arg({ type: GenerationStatusEnum, required: false }), modelId: t.arg.id({ required: false }) },
      resolve: (_, args, ctx) =>
        keysetConnection(args, (page) => {
          const qb = ctx.services.ds.manager.createQueryBuilder(JobEntity, 'j').where('j.kind = :kind', { kind: imageKind.name });
          if (args.status) qb.andWhere('j.status = :status', { status: args.status });
          if (args.modelId) {
            if (!isUuid(args.modelId)) return Promise.resolve([]);
            qb.andWhere('EXISTS (SELECT 1 FROM job_models jm WHERE jm.job_id = j.id AND jm.model_id = :modelId)', { modelId: args.modelId });
          }
          return applyKeyset(qb, page).getMany() as Promise<Generation[]>;
        }),
    },
    { name: 'GenerationConnection' },
    { name: 'GenerationEdge' },
  ),
  generation: t.field({
    type: GenerationRef,
    nullable: true,
    description: 'An image generation (null for a job of another kind: see `job`).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => loadGeneration(id, (i) => ctx.loaders.job.load(i)),
  }),
}));
