import { type Generation, GenerationEntity } from '../db/entities/generation.js';
import { eventsAfter } from '../events/event-log.js';
import type { SchedulerName } from '../pipelines/stable-diffusion/schedulers/scheduler-config.js';
import { builder } from './builder.js';
import { SchedulerEnum } from './scheduler.js';
import { GenerationAttemptRef, GenerationErrorRef, ImageRef, TimingRef } from './generation-details.js';
import { GenerationEventRef, GenerationStatusEnum, parseEventCursor, PipelineStepEnum } from './generation-event.js';
import { isUuid } from './ids.js';
import { ModelRef } from './model.js';
import { applyKeyset, keysetConnection } from './pagination.js';

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
    scheduler: t.field({ type: SchedulerEnum, nullable: true, resolve: (g) => g.scheduler as SchedulerName | null }),
    retryCount: t.exposeInt('retryCount'),
    attempts: t.field({
      type: [GenerationAttemptRef],
      description: 'Every run so far, oldest first, with how each ended.',
      resolve: (g, _, ctx) => ctx.loaders.attempts.load(g.id),
    }),
    cancelRequested: t.boolean({
      description: 'Cancellation was asked for while it ran; it stops at the next step.',
      resolve: (g) => g.cancelRequestedAt !== null,
    }),
    deadlineAt: t.expose('deadlineAt', { type: 'DateTime', nullable: true, description: 'Not started by then: CANCELLED.' }),
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

