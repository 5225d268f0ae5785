import { endSteps, jobStatuses, QUEUED } from '../db/entities/job.js';
import type { JobEvent } from '../db/entities/job-event.js';
import { badInput, notFound } from '../errors.js';
import { allEventsStream, progressStream } from '../events/progress-stream.js';
import { KINDS } from '../kinds/registry.js';
import { builder } from './builder.js';
import { isUuid } from './ids.js';

export const GenerationStatusEnum = builder.enumType('GenerationStatus', { values: jobStatuses, description: 'Where a job (of any kind) is in its lifecycle.' });

/** QUEUED, every kind's own steps in their order, then the ends. */
const steps = [QUEUED, ...new Set(KINDS.flatMap((k) => Object.keys(k.steps))), ...endSteps];
export const PipelineStepEnum = builder.enumType('PipelineStep', { values: steps, description: 'The steps of jobs, of every kind.' });

/** Event cursors are the per-job sequence number, opaque to clients. */
export function parseEventCursor(after: string | null | undefined, field = 'after'): number {
  if (after == null) return 0;
  if (!/^\d{1,9}$/.test(after)) throw badInput(field, 'is not an event cursor');
  return Number(after);
}

export const GenerationEventRef = builder.objectRef<JobEvent>('GenerationEvent').implement({
  description: 'One step of a job (a generation, or a job of another kind), as persisted and streamed.',
  fields: (t) => ({
    cursor: t.string({ description: 'Opaque; strictly increasing per job.', resolve: (e) => String(e.seq) }),
    generationId: t.exposeID('jobId', { description: 'The job it is a step of (of any kind, despite the name).' }),
    jobId: t.exposeID('jobId'),
    step: t.field({ type: PipelineStepEnum, resolve: (e) => e.step }),
    status: t.field({ type: GenerationStatusEnum, resolve: (e) => e.status }),
    attempt: t.exposeInt('attempt', { description: 'Which run of the job (1 = first; 0 before any).' }),
    stepIndex: t.exposeInt('stepIndex', { nullable: true, description: 'Units of the step done (a GENERATING event: the denoising step, 1..stepCount).' }),
    stepCount: t.exposeInt('stepCount', { nullable: true }),
    progress: t.exposeFloat('progress', { description: '0..1' }),
    message: t.exposeString('message', { nullable: true }),
    etaSeconds: t.exposeFloat('etaSeconds', { nullable: true, description: 'Estimated time to COMPLETED, when known.' }),
    preview: t.exposeString('preview', { nullable: true, description: 'A small image (data URL) of the current state.' }),
    detail: t.field({ type: 'JSON', nullable: true, description: "What the job's kind reports beside the step.", resolve: (e) => e.detail }),
    at: t.expose('at', { type: 'DateTime', description: 'When the step happened.' }),
  }),
});

builder.subscriptionFields((t) => ({
  generationProgress: t.field({
    type: GenerationEventRef,
    description:
      'Replays the events of a job (of any kind) after `after` (all of them when omitted), then streams live ones; completes after the terminal event (COMPLETED, FAILED or CANCELLED).',
    args: { id: t.arg.id({ required: true }), after: t.arg.string({ required: false }) },
    subscribe: async (_, { id, after }, ctx) => {
      const afterSeq = parseEventCursor(after);
      if (!isUuid(id) || !(await ctx.loaders.job.load(id))) throw notFound('generation', id);
      return progressStream(ctx.services.ds, ctx.services.hub, id, afterSeq);
    },
    resolve: (e) => e,
  }),
  generationEvents: t.field({
    type: GenerationEventRef,
    description: "Every job's events as they happen, for dashboards (no replay); optionally of one status or kind.",
    args: { status: t.arg({ type: GenerationStatusEnum, required: false }), kind: t.arg.string({ required: false, description: 'e.g. "image"' }) },
    subscribe: (_, { status, kind }, ctx) => allEventsStream(ctx.services.hub, (e, k) => (!status || e.status === status) && (!kind || k === kind)),
    resolve: (e) => e,
  }),
}));
