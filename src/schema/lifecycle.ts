import { notFound } from '../errors.js';
import { cancelJob } from '../jobs/cancel.js';
import { deleteJob } from '../jobs/delete.js';
import { builder } from './builder.js';
import { isUuid } from './ids.js';
import { JobRef } from './job.js';

builder.mutationFields((t) => ({
  cancelJob: t.field({
    type: JobRef,
    description:
      'Cancels a job of any kind. PENDING: cancelled at once. RUNNING: stops at the next step boundary (cancelRequested is true until then; the CANCELLED event reaches every subscriber). Already over: CONFLICT. Unknown: NOT_FOUND.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => {
      if (!isUuid(id)) throw notFound('job', id);
      return cancelJob(ctx.services, id);
    },
  }),
  deleteJob: t.id({
    description: 'Deletes a job of any kind with its events, outputs and stored files; a running one is stopped first.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_, { id }, ctx) => {
      if (!isUuid(id)) throw notFound('job', id);
      await deleteJob(ctx.services, id);
      return id;
    },
  }),
}));
