import { notFound } from '../errors.js';
import { cancelGeneration } from '../jobs/cancel.js';
import { deleteGeneration } from '../jobs/delete.js';
import { builder } from './builder.js';
import { GenerationRef } from './generation.js';
import { isUuid } from './ids.js';

builder.mutationFields((t) => ({
  cancelGeneration: t.field({
    type: GenerationRef,
    description:
      'PENDING: cancelled at once. RUNNING: stops at the next step boundary (cancelRequested is true until then; the CANCELLED event reaches every subscriber). Already over: CONFLICT. Unknown: NOT_FOUND.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => {
      if (!isUuid(id)) throw notFound('generation', id);
      return cancelGeneration(ctx.services, id);
    },
  }),
  deleteGeneration: t.id({
    description: 'Deletes a generation with its events, images and stored files; a running one is stopped first.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_, { id }, ctx) => {
      if (!isUuid(id)) throw notFound('generation', id);
      await deleteGeneration(ctx.services, id);
      return id;
    },
  }),
}));
