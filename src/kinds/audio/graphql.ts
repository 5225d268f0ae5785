import { type Job, JobEntity } from '../../db/entities/job.js';
import { inputSchemaOf } from '../../jobs/input-schema.js';
import { builder } from '../../schema/builder.js';
import { isUuid } from '../../schema/ids.js';
import { JobRef, jobTypeFor } from '../../schema/job.js';
import { GenerationStatusEnum } from '../../schema/job-event.js';
import { ModelRef } from '../../schema/model.js';
import { AudioRef } from '../../schema/outputs.js';
import { applyKeyset, keysetConnection } from '../../schema/pagination.js';
import { inputTypeFromZod } from '../../schema/params-input.js';
import { batchItems, IDEMPOTENCY_KEY, submit } from '../../schema/submission.js';
import { audioKind } from './kind.js';
import type { AudioParams } from './params.js';

type AudioGeneration = Job & { params: AudioParams };
const param = <K extends keyof AudioParams>(key: K) => (g: AudioGeneration) => g.params[key];

export const GenerateAudioInputRef = inputTypeFromZod(
  'GenerateAudioInput',
  inputSchemaOf(audioKind),
  {},
  "A music generation: the prompt, and whatever else should not be the model's default.",
);

/** A music generation: a job of kind `audio`. */
export const AudioGenerationRef = builder.objectRef<AudioGeneration>('AudioGeneration').implement({
  description: 'A music generation (a job of kind "audio"): a prompt in, a WAV out.',
  interfaces: [JobRef],
  fields: (t) => ({
    prompt: t.string({ resolve: param('prompt') }),
    model: t.field({ type: ModelRef, resolve: async (g, _, ctx) => (await ctx.loaders.model.load(g.params.modelId))! }),
    durationSeconds: t.float({ resolve: param('durationSeconds') }),
    guidanceScale: t.float({ resolve: param('guidanceScale') }),
    seed: t.float({ resolve: param('seed') }),
    topK: t.int({ description: '0: sampled among all tokens.', resolve: param('topK') }),
    temperature: t.float({ description: '0: greedy.', resolve: param('temperature') }),
    audio: t.field({
      type: [AudioRef],
      description: 'Its outputs, which are all audio.',
      resolve: async (g, _, ctx) => (await ctx.loaders.outputs.load(g.id)).filter((o) => o.mediaType === 'audio'),
    }),
  }),
});
jobTypeFor(audioKind.name, 'AudioGeneration');

const AudioBatchResultRef = builder.objectRef<{ jobs: Job[]; estimatedTotalSeconds: number }>('AudioBatchResult').implement({
  fields: (t) => ({
    generations: t.field({ type: [AudioGenerationRef], resolve: (r) => r.jobs as AudioGeneration[] }),
    estimatedTotalSeconds: t.exposeFloat('estimatedTotalSeconds', {
      description:
        "Time to run them one after another (queue wait not included), from each model's recent runs (its fixed cost and decoder steps per second); before it has any, 1 s plus a documented rate per pipeline.",
    }),
  }),
});

/** A music job by id: null for a job of another kind, or none. */
const loadAudioGeneration = async (id: string, load: (id: string) => Promise<Job | undefined>) => {
  const job = isUuid(id) ? await load(id) : undefined;
  return job?.kind === audioKind.name ? (job as AudioGeneration) : undefined;
};

builder.mutationFields((t) => ({
  generateAudio: t.field({
    type: AudioGenerationRef,
    description: 'Queues one music generation: its row, QUEUED event and job are written in one transaction. Cancel and delete it with cancelJob and deleteJob.',
    args: { input: t.arg({ type: GenerateAudioInputRef, required: true }), idempotencyKey: t.arg.string({ required: false, description: IDEMPOTENCY_KEY }) },
    resolve: async (_, { input, idempotencyKey }, ctx) => {
      const { jobs } = await submit(ctx, audioKind, 'generateAudio', [{ input, field: 'input' }], idempotencyKey);
      return jobs[0] as AudioGeneration;
    },
  }),
  generateAudioBatch: t.field({
    type: AudioBatchResultRef,
    description:
      'Queues 1..10 music generations (KILN_MAX_BATCH), all or nothing: every input is validated before anything is written; errors name the input from 0 (`inputs.2.durationSeconds` is the third).',
    args: { inputs: t.arg({ type: [GenerateAudioInputRef], required: true }), idempotencyKey: t.arg.string({ required: false, description: IDEMPOTENCY_KEY }) },
    resolve: (_, { inputs, idempotencyKey }, ctx) => submit(ctx, audioKind, 'generateAudioBatch', batchItems(ctx, inputs), idempotencyKey),
  }),
}));

builder.queryFields((t) => ({
  audioGenerations: t.connection(
    {
      type: AudioGenerationRef,
      description: 'Music generations, newest first; of one status, or made with one model.',
      args: { status: t.arg({ type: GenerationStatusEnum, required: false }), modelId: t.arg.id({ required: false }) },
      resolve: (_, args, ctx) =>
        keysetConnection(args, (page) => {
          const qb = ctx.services.ds.manager.createQueryBuilder(JobEntity, 'j').where('j.kind = :kind', { kind: audioKind.name });
          if (args.status) qb.andWhere('j.status = :status', { status: args.status });
          if (args.modelId) {
            if (!isUuid(args.modelId)) return Promise.resolve([]);
            qb.andWhere('EXISTS (SELECT 1 FROM job_models jm WHERE jm.job_id = j.id AND jm.model_id = :modelId)', { modelId: args.modelId });
          }
          return applyKeyset(qb, page).getMany() as Promise<AudioGeneration[]>;
        }),
    },
    { name: 'AudioGenerationConnection' },
    { name: 'AudioGenerationEdge' },
  ),
  audioGeneration: t.field({
    type: AudioGenerationRef,
    nullable: true,
    description: 'A music generation (null for a job of another kind: see `job`).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => loadAudioGeneration(id, (i) => ctx.loaders.job.load(i)),
  }),
}));
