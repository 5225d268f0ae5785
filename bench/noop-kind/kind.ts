/**
 * A kind for measuring the engine itself: one step, one runner round trip that does nothing, no
 * output. Everything its jobs cost is Kiln's own (queue, attempt, lease, events, completion).
 */
import { z } from 'zod';
import type { KindDefinition } from '../../src/jobs/kind.js';

export const noopParams = z.object({ label: z.string() });

export const noopKind: KindDefinition<z.output<typeof noopParams>> = {
  name: 'noop',
  params: noopParams,
  required: ['label'],
  steps: { LOADING_MODEL: 0.05, GENERATING: [0.1, 0.9], SAVING: 0.95 },
  queues: ['noop'],
  servedQueues: () => ['noop'],
  prepare: async (_em, input) => ({ params: { label: input.label! }, models: [], queue: 'noop' }),
  estimateSeconds: async () => 0,
  task: () => import('./task.js'),
};
