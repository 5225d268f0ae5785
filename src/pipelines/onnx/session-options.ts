import os from 'node:os';
import type { InferenceSession } from 'onnxruntime-node';
import type { LoadOptions } from '../pipeline.js';

/** Session options shared by every pipeline: full graph optimisation, one thread per core. */
export function createSessionOptions(options: LoadOptions): InferenceSession.SessionOptions {
  return {
    executionProviders: options.executionProviders,
    graphOptimizationLevel: 'all',
    intraOpNumThreads: options.intraOpThreads ?? os.availableParallelism(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
  };
}
