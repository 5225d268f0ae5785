import type { GenerationEvent } from '../db/entities/generation-event.js';
import { generationStatuses, pipelineSteps } from '../db/entities/generation.js';
import { badInput, notFound } from '../errors.js';
import { allEventsStream, progressStream } from '../events/progress-stream.js';
import { builder } from './builder.js';
import { isUuid } from './ids.js';

export const GenerationStatusEnum = builder.enumType('GenerationStatus', { values: generationStatuses });
export const PipelineStepEnum = builder.enumType('PipelineStep', { values: pipelineSteps });

/** Event cursors are the per-generation sequence number, opaque to clients. */
export function parseEventCursor(after: string | null | undefined, field = 'after'): number {
  if (after == null) return 0;
  if (!/^\d{1,9}$/.test(after)) throw badInput(field, 'is not an event cursor');
  return Number(after);
}

export const GenerationEventRef = builder.objectRef<GenerationEvent>('GenerationEvent').implement({
  description: 'One step of a generation, as persisted and streamed.',
  fields: (t) => ({
    cursor: t.string({ description: 'Opaque; strictly increasing per generation.', resolve: (e) => String(e.seq) }),
    generationId: t.exposeID('generationId'),
    step: t.field({ type: PipelineStepEnum, resolve: (e) => e.step }),
    status: t.field({ type: GenerationStatusEnum, resolve: (e) => e.status }),
    attempt: t.exposeInt('attempt', { description: 'Which run of the generation (1 = first; 0 before any).' }),
    stepIndex: t.exposeInt('stepIndex', { nullable: true, description: 'GENERATING: 1..stepCount' }),
    stepCount: t.exposeInt('stepCount', { nullable: true }),
    progress: t.exposeFloat('progress', { description: '0..1' }),
    message: t.exposeString('message', { nullable: true }),
    etaSeconds: t.exposeFloat('etaSeconds', { nullable: true, description: 'Estimated time to COMPLETED, when known.' }),
    preview: t.exposeString('preview', { nullable: true, description: 'A small image (data URL) of the current state.' }),
    at: t.expose('at', { type: 'DateTime' }),
  }),
});

builder.subscriptionFields((t) => ({
  generationProgress: t.field({
    type: GenerationEventRef,
    description:
      'Replays the events after `after` (all of them when omitted), then streams live ones; completes after the terminal event (COMPLETED, FAILED or CANCELLED).',
    args: { id: t.arg.id({ required: true }), after: t.arg.string({ required: false }) },
    subscribe: async (_, { id, after }, ctx) => {
      const afterSeq = parseEventCursor(after);
      if (!isUuid(id) || !(await ctx.loaders.generation.load(id))) throw notFound('generation', id);
      return progressStream(ctx.services.ds, ctx.services.hub, id, afterSeq);
    },
    resolve: (e) => e,
  }),
  generationEvents: t.field({
    type: GenerationEventRef,
    description: "Every generation's events as they happen, for dashboards (no replay).",
    args: { status: t.arg({ type: GenerationStatusEnum, required: false }) },
    subscribe: (_, { status }, ctx) => allEventsStream(ctx.services.hub, status),
    resolve: (e) => e,
  }),
}));
