import { type QueueStats, queueStats } from '../jobs/queue-stats.js';
import { builder } from './builder.js';

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
      description: 'Mean run time of the last 100 completed generations.',
    }),
  }),
});

builder.queryField('queueStats', (t) => t.field({ type: QueueStatsRef, resolve: (_, __, ctx) => queueStats(ctx.services.ds) }));
