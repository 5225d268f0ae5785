import type { WorkerRow } from '../db/entities/worker.js';
import { liveWorkers } from '../jobs/workers.js';
import type { Job } from '../db/entities/job.js';
import type { Model } from '../db/entities/model.js';
import { builder } from './builder.js';
import { JobRef } from './job.js';
import { ModelRef } from './model.js';

const found = <T>(rows: (T | undefined | Error)[]) => rows.filter((r): r is T => r !== undefined && !(r instanceof Error));

const WorkerRef = builder.objectRef<WorkerRow>('Worker').implement({
  description: 'A running worker process, as it last reported itself (every few seconds).',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'host:pid' }),
    host: t.exposeString('host'),
    pid: t.exposeInt('pid'),
    kinds: t.exposeStringList('kinds', { description: 'Kinds of job it takes.' }),
    queues: t.exposeStringList('queues', { description: 'Queues it takes jobs from: kind and pipeline (or trainer).' }),
    providers: t.exposeStringList('providers', { description: 'Execution providers in use.' }),
    modelsLoaded: t.field({
      type: [ModelRef],
      description: 'Models its runners hold loaded, which its next jobs reuse.',
      resolve: async (w, _, ctx) => found<Model>(await ctx.loaders.model.loadMany(w.modelsLoaded)),
    }),
    currentJobs: t.field({
      type: [JobRef],
      description: 'The jobs it runs now.',
      resolve: async (w, _, ctx) => found<Job>(await ctx.loaders.job.loadMany(w.currentJobs)),
    }),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    lastHeartbeat: t.expose('heartbeatAt', { type: 'DateTime' }),
  }),
});

builder.queryField('workers', (t) =>
  t.field({ type: [WorkerRef], description: 'The workers running now (those that reported within the last 15 s).', resolve: (_, __, ctx) => liveWorkers(ctx.services.ds) }),
);
