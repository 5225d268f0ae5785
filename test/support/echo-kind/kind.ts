/**
 * A kind of work defined by the tests alone, to prove that a kind needs no lifecycle code of its
 * own: it echoes a text, upper-cased, in `units` steps run in the inference runner, and stores
 * the result as a PNG of one row of grey pixels (one per character). `failAttempts` makes its
 * first attempts fail with a retryable error; `saveMs` makes storing take that long, after it has
 * let the runner go.
 */
import { z } from 'zod';
import type { KindDefinition } from '../../../src/jobs/kind.js';

export const echoParams = z.object({
  text: z.string().min(1, 'must not be empty').max(100),
  units: z.number().int().min(1).max(100),
  stepMs: z.number().int().min(0).max(1000),
  failAttempts: z.number().int().min(0).max(5),
  saveMs: z.number().int().min(0).max(10_000),
});
export type EchoParams = z.output<typeof echoParams>;

export const echoKind: KindDefinition<EchoParams> = {
  name: 'echo',
  params: echoParams,
  required: ['text'],
  // Steps the API already knows (its enum is printed from Kiln's own kinds).
  steps: { LOADING_MODEL: 0.05, GENERATING: [0.1, 0.9], SAVING: 0.95 },
  queues: ['echo'],
  servedQueues: () => ['echo'],
  prepare: async (_em, input) => ({
    params: { text: input.text!, units: input.units ?? 3, stepMs: input.stepMs ?? 0, failAttempts: input.failAttempts ?? 0, saveMs: input.saveMs ?? 0 },
    models: [],
    queue: 'echo',
  }),
  estimateSeconds: async (_em, params) => params.reduce((s, p) => s + (p.units * p.stepMs) / 1000, 0),
  task: () => import('./task.js'),
};
