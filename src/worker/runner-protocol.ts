import type { SessionCache } from '../models/session-cache.js';
import type { ProviderCheck } from '../pipelines/onnx/provider-check.js';

/** Settings the runner process gets from its parent (it reads no environment of its own). */
export interface RunnerSettings {
  executionProviders: string[];
  sessionCacheBytes: number;
  keepAliveMs: number;
  /** Minimum time between two previews of one job. */
  previewIntervalMs: number;
}

/**
 * What a task run in the runner process is lent. A kind's runner module exports
 * `runInRunner(input, ctx)`; what it returns goes back to the kind's task in the worker.
 */
export interface RunnerContext {
  /** Aborted when the run must stop: it should throw the signal's reason at its next step. */
  signal: AbortSignal;
  /** Tells the worker something happened (a model loaded, a step done); delivered in order. */
  emit(name: string, data: unknown): void;
  /** Loaded models kept between jobs in this process, under keys the tasks choose. */
  cache: SessionCache;
  /** The execution providers that passed the check at start. */
  providers: string[];
  previewIntervalMs: number;
}

export type RunnerModule = { runInRunner(input: unknown, ctx: RunnerContext): Promise<unknown> };

export interface RunSpec {
  jobId: string;
  /** URL of the module to run (a kind's runner task). */
  module: string;
  input: unknown;
}

export interface RunFailure {
  code: string;
  message: string;
  retryable: boolean;
  stack?: string;
}

export type ToRunner = { type: 'init'; settings: RunnerSettings } | { type: 'run'; spec: RunSpec } | { type: 'cancel'; jobId: string };

export type FromRunner =
  /** Started, with the execution providers it found working (and why others did not). */
  | { type: 'ready'; providers: ProviderCheck }
  | { type: 'event'; jobId: string; name: string; data: unknown }
  /** `warm`: the session cache's keys once the run is over, what the next job could reuse. */
  | { type: 'done'; jobId: string; result: unknown; warm: string[]; cacheBytes: number }
  | { type: 'failed'; jobId: string; error: RunFailure; warm: string[]; cacheBytes: number };
