import type { Generation, Timing } from '../db/entities/generation.js';
import { GenerationEntity } from '../db/entities/generation.js';
import type { Image } from '../db/entities/image.js';
import { eventsAfter } from '../events/event-log.js';
import { generateInputSchema } from '../jobs/generate-input.js';
import { submitGenerations } from '../jobs/submit.js';
import { builder } from './builder.js';
import { GenerationEventRef, GenerationStatusEnum, parseEventCursor, PipelineStepEnum } from './generation-event.js';
import { isUuid } from './ids.js';
import { ModelRef } from './model.js';
import { applyKeyset, keysetConnection } from './pagination.js';

const ImageRef = builder.objectRef<Image>('Image').implement({
  fields: (t) => ({
    url: t.string({
      description: 'Signed link to the image; it expires (KILN_URL_TTL_S).',
      resolve: (img, _, ctx) => ctx.services.storage.signedUrl(img.storageKey, { baseUrl: ctx.baseUrl }),
    }),
    width: t.exposeInt('width'),
    height: t.exposeInt('height'),
    bytes: t.exposeInt('bytes'),
    sha256: t.exposeString('sha256'),
    seed: t.exposeFloat('seed'),
    mimeType: t.exposeString('mimeType'),
  }),
});

const TimingRef = builder.objectRef<Timing>('Timing').implement({
  description: 'Where the time went, in milliseconds.',
  fields: (t) => ({
    modelLoadMs: t.exposeFloat('modelLoadMs', { nullable: true }),
    loraLoadMs: t.exposeFloat('loraLoadMs', { nullable: true }),
    encodeMs: t.exposeFloat('encodeMs', { nullable: true }),
    generateMs: t.exposeFloat('generateMs', { nullable: true }),
    saveMs: t.exposeFloat('saveMs', { nullable: true }),
    totalMs: t.exposeFloat('totalMs', { nullable: true }),
  }),
});

const GenerationErrorRef = builder.objectRef<{ code: string; message: string; retryable: boolean }>('GenerationError').implement({
  fields: (t) => ({
    code: t.exposeString('code'),
    message: t.exposeString('message'),
    retryable: t.exposeBoolean('retryable'),
  }),
});

export const GenerationRef = builder.objectRef<Generation>('Generation');
GenerationRef.implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    status: t.field({ type: GenerationStatusEnum, resolve: (g) => g.status }),
    currentStep: t.field({ type: PipelineStepEnum, resolve: (g) => g.currentStep }),
    progress: t.exposeFloat('progress', { description: '0..1' }),
    prompt: t.exposeString('prompt'),
    negativePrompt: t.exposeString('negativePrompt', { nullable: true }),
    model: t.field({ type: ModelRef, resolve: async (g, _, ctx) => (await ctx.loaders.model.load(g.modelId))! }),
    lora: t.field({ type: ModelRef, nullable: true, resolve: (g, _, ctx) => (g.loraId ? ctx.loaders.model.load(g.loraId) : null) }),
    loraWeight: t.exposeFloat('loraWeight', { nullable: true }),
    numImages: t.exposeInt('numImages'),
    steps: t.exposeInt('steps'),
    guidanceScale: t.exposeFloat('guidanceScale'),
    width: t.exposeInt('width'),
    height: t.exposeInt('height'),
    seed: t.exposeFloat('seed'),
    priority: t.exposeInt('priority'),
    previews: t.exposeBoolean('previews'),
    retryCount: t.exposeInt('retryCount'),
    images: t.field({ type: [ImageRef], resolve: (g, _, ctx) => ctx.loaders.images.load(g.id) }),
    error: t.field({
      type: GenerationErrorRef,
      nullable: true,
      resolve: (g) => (g.errorCode ? { code: g.errorCode, message: g.errorMessage ?? '', retryable: g.errorRetryable ?? false } : null),
    }),
    timing: t.field({ type: TimingRef, nullable: true, resolve: (g) => g.timing }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
    events: t.field({
      type: [GenerationEventRef],
      args: { after: t.arg.string({ required: false }) },
      resolve: (g, { after }, ctx) => eventsAfter(ctx.services.ds.manager, g.id, parseEventCursor(after)),
    }),
  }),
});

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
    }),
  })
  .validate(generateInputSchema);

builder.queryFields((t) => ({
  generations: t.connection(
    {
    type: GenerationRef,
    description: 'Newest first.',
    args: { status: t.arg({ type: GenerationStatusEnum, required: false }) },
    resolve: (_, args, ctx) =>
      keysetConnection(args, (page) => {
        const qb = ctx.services.ds.manager.createQueryBuilder(GenerationEntity, 'g');
        if (args.status) qb.where('g.status = :status', { status: args.status });
        return applyKeyset(qb, page).getMany();
      }),
    },
    { name: 'GenerationConnection' },
    { name: 'GenerationEdge' },
  ),
  generation: t.field({
    type: GenerationRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => (isUuid(id) ? ctx.loaders.generation.load(id) : null),
  }),
}));

builder.mutationFields((t) => ({
  generate: t.field({
    type: GenerationRef,
    description: 'Queues one generation: its row, QUEUED event and job are written in one transaction.',
    args: { input: t.arg({ type: GenerateInputRef, required: true }) },
    resolve: async (_, { input }, ctx) => (await submitGenerations(ctx.services, [{ input, field: 'input' }]))[0]!,
  }),
}));
