import { DatasetEntity } from '../../db/entities/dataset.js';
import { type Job, JobEntity } from '../../db/entities/job.js';
import type { TrainedFrom } from '../../db/entities/model.js';
import { inputSchemaOf } from '../../jobs/input-schema.js';
import { builder } from '../../schema/builder.js';
import { isUuid } from '../../schema/ids.js';
import { JobRef, jobTypeFor } from '../../schema/job.js';
import { GenerationStatusEnum } from '../../schema/job-event.js';
import { ModelRef } from '../../schema/model.js';
import { applyKeyset, keysetConnection } from '../../schema/pagination.js';
import { inputTypeFromZod } from '../../schema/params-input.js';
import { IDEMPOTENCY_KEY, submit } from '../../schema/submission.js';
import type { Context } from '../../server/context.js';
import { DatasetRef } from './dataset-graphql.js';
import { trainingKind } from './kind.js';
import type { TrainingParams } from './params.js';

type Training = Job & { params: TrainingParams };
const param = <K extends keyof TrainingParams>(key: K) => (j: Training) => j.params[key];

const TrainerEnum = builder.enumType('Trainer', {
  description: 'The LoRA trainers Kiln runs; which a worker has is in `workers` (its queues).',
  values: {
    BUILTIN: { value: 'builtin', description: "Kiln's own, for the built-in model, on any CPU." },
    AI_TOOLKIT: { value: 'ai-toolkit', description: 'ostris/ai-toolkit, on a GPU host with it installed (KILN_TRAINER_AI_TOOLKIT).' },
    SD_SCRIPTS: { value: 'sd-scripts', description: 'kohya-ss/sd-scripts, on a GPU host with it installed (KILN_TRAINER_SD_SCRIPTS).' },
  } as const,
});

export const TrainLoraInputRef = inputTypeFromZod('TrainLoraInput', inputSchemaOf(trainingKind), { Trainer: TrainerEnum }, 'A LoRA training: the dataset, a name and the trigger word, and whatever should not be the trainer\'s default.');

const LossPointRef = builder.objectRef<{ step: number; loss: number }>('LossPoint').implement({
  fields: (t) => ({ step: t.exposeInt('step'), loss: t.exposeFloat('loss') }),
});

const datasetOf = (id: string, ctx: Context) => ctx.services.ds.manager.findOneBy(DatasetEntity, { id });

/** Each step's loss as reported so far; a step trained again after a resume counts as its last run. */
async function lossCurve(ctx: Context, jobId: string) {
  const rows: { step: number; loss: number }[] = await ctx.services.ds.query(
    `SELECT DISTINCT ON (step_index) step_index AS step, (detail->>'loss')::float AS loss FROM job_events
     WHERE job_id = $1 AND step = 'TRAINING' AND jsonb_typeof(detail->'loss') = 'number'
     ORDER BY step_index, seq DESC`,
    [jobId],
  );
  return rows;
}

export const TrainingRef = builder.objectRef<Training>('Training').implement({
  description: 'A LoRA training (a job of kind "training").',
  interfaces: [JobRef],
  fields: (t) => ({
    name: t.string({ resolve: param('name') }),
    triggerWord: t.string({ resolve: param('triggerWord') }),
    trainer: t.field({ type: TrainerEnum, resolve: param('trainer') }),
    steps: t.int({ resolve: param('steps') }),
    rank: t.int({ resolve: param('rank') }),
    alpha: t.float({ resolve: param('alpha') }),
    learningRate: t.float({ resolve: param('learningRate') }),
    resolution: t.int({ resolve: param('resolution') }),
    batchSize: t.int({ resolve: param('batchSize') }),
    seed: t.float({ resolve: param('seed') }),
    checkpointEvery: t.int({ resolve: param('checkpointEvery') }),
    sampleEvery: t.int({ resolve: param('sampleEvery') }),
    trainingWeights: t.string({ nullable: true, resolve: param('trainingWeights') }),
    dataset: t.field({ type: DatasetRef, nullable: true, description: 'Null once the dataset is deleted.', resolve: (j, _, ctx) => datasetOf(j.params.datasetId, ctx) }),
    baseModel: t.field({ type: ModelRef, resolve: async (j, _, ctx) => (await ctx.loaders.model.load(j.params.baseModelId))! }),
    loss: t.field({
      type: [LossPointRef],
      description: 'The loss of every step so far (sd-scripts reports its running average), from its TRAINING events.',
      resolve: (j, _, ctx) => lossCurve(ctx, j.id),
    }),
    model: t.field({
      type: ModelRef,
      nullable: true,
      description: 'The LoRA adapter it made (of its base model, with its trigger word), once it completed; null before, and if it was deleted.',
      resolve: async (j, _, ctx) => {
        const model = j.status === 'COMPLETED' ? await ctx.loaders.model.load(j.id) : undefined;
        return model && !model.deletedAt ? model : null;
      },
    }),
  }),
});
jobTypeFor(trainingKind.name, 'Training');

const LoraTrainingRef = builder.objectRef<TrainedFrom>('LoraTraining').implement({
  description: 'How Kiln trained a LoRA adapter.',
  fields: (t) => ({
    training: t.field({
      type: TrainingRef,
      nullable: true,
      description: 'The training job (null once deleted).',
      resolve: async (f, _, ctx) => ((await ctx.loaders.job.load(f.jobId)) as Training | undefined) ?? null,
    }),
    dataset: t.field({ type: DatasetRef, nullable: true, description: 'Null once deleted.', resolve: (f, _, ctx) => datasetOf(f.datasetId, ctx) }),
    datasetName: t.exposeString('datasetName'),
    datasetSha256: t.exposeString('datasetSha256'),
    trainer: t.field({ type: TrainerEnum, resolve: (f) => f.trainer as TrainingParams['trainer'] }),
    parameters: t.field({ type: 'JSON', description: 'steps, rank, alpha, learningRate, resolution, batchSize, seed, …', resolve: (f) => f.parameters }),
    metadata: t.field({ type: 'JSON', description: "The adapter file's metadata: the trainer's (kohya's ss_*, …) and Kiln's (kiln.*).", resolve: (f) => f.metadata }),
  }),
});

builder.objectField(ModelRef, 'training', (t) =>
  t.field({ type: LoraTrainingRef, nullable: true, description: 'For a LoRA adapter Kiln trained: how (null for uploaded ones).', resolve: (m) => m.training }),
);

/** A training by id: null for a job of another kind, or none. */
const loadTraining = async (id: string, ctx: Context) => {
  const job = isUuid(id) ? await ctx.loaders.job.load(id) : undefined;
  return job?.kind === trainingKind.name ? (job as Training) : undefined;
};

builder.mutationFields((t) => ({
  trainLora: t.field({
    type: TrainingRef,
    description:
      'Queues a LoRA training of a base model on a ready dataset. Cancel it with cancelJob, delete it with deleteJob; watch it with generationProgress (PREPARING_DATASET, LOADING_MODEL, TRAINING with the loss in `detail` and samples as previews, SAVING).',
    args: { input: t.arg({ type: TrainLoraInputRef, required: true }), idempotencyKey: t.arg.string({ required: false, description: IDEMPOTENCY_KEY }) },
    resolve: async (_, { input, idempotencyKey }, ctx) => {
      const { jobs } = await submit(ctx, trainingKind, 'trainLora', [{ input, field: 'input' }], idempotencyKey);
      return jobs[0] as Training;
    },
  }),
}));

builder.queryFields((t) => ({
  training: t.field({
    type: TrainingRef,
    nullable: true,
    description: 'A LoRA training (null for a job of another kind: see `job`).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => loadTraining(id, ctx),
  }),
  trainings: t.connection(
    {
      type: TrainingRef,
      description: 'LoRA trainings, newest first; of one status, or on one dataset.',
      args: { status: t.arg({ type: GenerationStatusEnum, required: false }), datasetId: t.arg.id({ required: false }) },
      resolve: (_, args, ctx) =>
        keysetConnection(args, (page) => {
          const qb = ctx.services.ds.manager.createQueryBuilder(JobEntity, 'j').where('j.kind = :kind', { kind: trainingKind.name });
          if (args.status) qb.andWhere('j.status = :status', { status: args.status });
          if (args.datasetId) qb.andWhere(`j.params->>'datasetId' = :datasetId`, { datasetId: args.datasetId });
          return applyKeyset(qb, page).getMany() as Promise<Training[]>;
        }),
    },
    { name: 'TrainingConnection' },
    { name: 'TrainingEdge' },
  ),
}));
