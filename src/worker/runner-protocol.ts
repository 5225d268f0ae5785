import type { ProviderCheck } from '../pipelines/onnx/provider-check.js';
import type { GeneratedImage, GenerateRequest } from '../pipelines/pipeline.js';

/** Settings the runner process gets from its parent (it reads no environment of its own). */
export interface RunnerSettings {
  executionProviders: string[];
  sessionCacheBytes: number;
  keepAliveMs: number;
  /** Minimum time between two previews of one job. */
  previewIntervalMs: number;
}

export interface ModelSpec {
  /** Identifies the model's bytes (its content hash): the session cache's key. */
  key: string;
  pipeline: string;
  dir: string;
}

export interface LoraSpec {
  /** The adapter's content hash: with the model's and the weight, the session cache's key. */
  key: string;
  /** The adapter's safetensors file on this machine. */
  file: string;
  weight: number;
}

export interface RunSpec {
  jobId: string;
  model: ModelSpec;
  lora?: LoraSpec;
  request: GenerateRequest;
  previews: boolean;
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
  | { type: 'loaded'; jobId: string; loadMs: number; loraMs: number; cached: boolean; cacheBytes: number }
  | { type: 'step'; jobId: string; index: number; count: number; preview?: string }
  | { type: 'done'; jobId: string; images: GeneratedImage[]; encodeMs: number; generateMs: number }
  | { type: 'failed'; jobId: string; error: RunFailure };
