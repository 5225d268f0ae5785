import { type BlockedQueue, type QueueStats, queueStats } from '../jobs/queue-stats.js';
import { builder } from './builder.js';

const BlockedQueueRef = builder.objectRef<BlockedQueue>('BlockedQueue').implement({
  description: 'A queue whose jobs wait for a worker that is not running.',
  fields: (t) => ({
    queue: t.exposeString('queue', { description: 'Its kind and what it needs, e.g. "image.stable-diffusion-onnx".' }),
    kind: t.exposeString('kind'),
    pending: t.exposeInt('pending'),
    oldestPendingAgeSeconds: t.exposeFloat('oldestPendingAgeSeconds'),
    reason: t.exposeString('reason'),
  }),
});

const QueueStatsRef = builder.objectRef<QueueStats>('QueueStats').implement({
  fields: (t) => ({
    pending: t.exposeInt('pending'),
    running: t.exposeInt('running'),
    completed: t.exposeInt('completed'),
    failed: t.exposeInt('failed'),
    cancelled: t.exposeInt('cancelled'),
    oldestPendingAgeSeconds: t.exposeFloat('oldestPendingAgeSeconds', { nullable: true }),
    averageProcessingSeconds: t.exposeFloat('averageProcessingSeconds', {
      nullable: true,
      description: 'Mean run time of the last 100 completed jobs.',
    }),
    blocked: t.field({ type: [BlockedQueueRef], description: 'Queues with waiting jobs that no running worker takes, and why.', resolve: (s) => s.blocked }),
  }),
});

builder.queryField('queueStats', (t) =>
  t.field({
    type: QueueStatsRef,
    description: 'Jobs by status, of every kind or of one (e.g. "image").',
    args: { kind: t.arg.string({ required: false }) },
    resolve: (_, { kind }, ctx) => queueStats(ctx.services.ds, kind, ctx.services.kinds),
  }),
);
