import { type Job, JobEntity } from '../db/entities/job.js';
import { eventsAfter } from '../events/event-log.js';
import { builder } from './builder.js';
import { isUuid } from './ids.js';
import { GenerationAttemptRef, GenerationErrorRef, TimingRef } from './job-details.js';
import { GenerationEventRef, GenerationStatusEnum, parseEventCursor, PipelineStepEnum } from './job-event.js';
import { OutputRef } from './outputs.js';
import { applyKeyset, keysetConnection } from './pagination.js';

/** The GraphQL type of each kind's jobs, as the kinds' schema files register them. */
const typeOfKind = new Map<string, string>();

/** Makes `typeName` the type jobs of `kind` are shown as (they are GenericJob otherwise). */
export const jobTypeFor = (kind: string, typeName: string) => typeOfKind.set(kind, typeName);

/** What every job has, whatever its kind: its lifecycle, its events and what it made. */
export const JobRef = builder.interfaceRef<Job>('Job').implement({
  description: 'A job of any kind (an image generation, …): its lifecycle, its events and its outputs.',
  resolveType: (job) => typeOfKind.get(job.kind) ?? 'GenericJob',
  fields: (t) => ({
    id: t.exposeID('id'),
    kind: t.exposeString('kind', { description: 'The kind of work: "image", …' }),
    status: t.field({ type: GenerationStatusEnum, resolve: (j) => j.status }),
    currentStep: t.field({ type: PipelineStepEnum, resolve: (j) => j.currentStep }),
    progress: t.exposeFloat('progress', { description: '0..1' }),
    priority: t.exposeInt('priority', { description: '-100..100, higher runs first (within the queue its kind and model need).' }),
    retryCount: t.exposeInt('retryCount'),
    attempts: t.field({
      type: [GenerationAttemptRef],
      description: 'Every run so far, oldest first, with how each ended.',
      resolve: (j, _, ctx) => ctx.loaders.attempts.load(j.id),
    }),
    cancelRequested: t.boolean({
      description: 'Cancellation was asked for while it ran; it stops at the next step.',
      resolve: (j) => j.cancelRequestedAt !== null,
    }),
    deadlineAt: t.expose('deadlineAt', { type: 'DateTime', nullable: true, description: 'Not started by then: CANCELLED with DEADLINE_EXCEEDED, never run.' }),
    outputs: t.field({ type: [OutputRef], description: 'The files it made, in order.', resolve: (j, _, ctx) => ctx.loaders.outputs.load(j.id) }),
    params: t.field({ type: 'JSON', description: 'Its parameters as it runs with them (defaults filled in).', resolve: (j) => j.params }),
    error: t.field({
      type: GenerationErrorRef,
      nullable: true,
      resolve: (j) => (j.errorCode ? { code: j.errorCode, message: j.errorMessage ?? '', retryable: j.errorRetryable ?? false } : null),
    }),
    timing: t.field({ type: TimingRef, nullable: true, resolve: (j) => j.timing }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
    events: t.field({
      type: [GenerationEventRef],
      args: { after: t.arg.string({ required: false }) },
      resolve: (j, { after }, ctx) => eventsAfter(ctx.services.ds.manager, j.id, parseEventCursor(after)),
    }),
  }),
});

builder.objectRef<Job>('GenericJob').implement({
  description: 'A job of a kind that has no type of its own in this schema.',
  interfaces: [JobRef],
  fields: () => ({}),
});

builder.queryFields((t) => ({
  job: t.field({
    type: JobRef,
    nullable: true,
    description: 'A job of any kind.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => (isUuid(id) ? ctx.loaders.job.load(id) : null),
  }),
  jobs: t.connection(
    {
      type: JobRef,
      description: 'Jobs of every kind (or of one), newest first.',
      args: { kind: t.arg.string({ required: false }), status: t.arg({ type: GenerationStatusEnum, required: false }) },
      resolve: (_, args, ctx) =>
        keysetConnection(args, (page) => {
          const qb = ctx.services.ds.manager.createQueryBuilder(JobEntity, 'j').where('true');
          if (args.kind) qb.andWhere('j.kind = :kind', { kind: args.kind });
          if (args.status) qb.andWhere('j.status = :status', { status: args.status });
          return applyKeyset(qb, page).getMany();
        }),
    },
    { name: 'JobConnection' },
    { name: 'JobEdge' },
  ),
}));
