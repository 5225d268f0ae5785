/**
 * What every audio pipeline (MusicGen, the built-in music model) offers the worker, beside the
 * image pipelines' `pipeline.ts`. Knows nothing of jobs.
 */
import type { LoadOptions } from './pipeline.js';

export interface AudioGenerateRequest {
  prompt: string;
  /**
   * How long the audio is: the pipeline makes `round(durationSeconds × frame rate)` frames.
   * Ignored when `maxNewTokens` is given.
   */
  durationSeconds?: number;
  /** Decoder steps, exactly as transformers' `max_new_tokens` (a MusicGen of K codebooks per channel makes max_new_tokens − K + 1 frames). */
  maxNewTokens?: number;
  /** Classifier-free guidance; 1 or less runs the prompt alone. */
  guidanceScale: number;
  /** Seed of the first output; output i uses seed + i (wrapping at 2^32). */
  seed: number;
  /** Sample among the k most likely tokens; 0 (or the vocabulary size or more) samples among all. */
  topK: number;
  /** Softmax temperature; 0 means greedy (always the most likely token, seed and topK unused). */
  temperature: number;
  /** Outputs made in one batch, 1 when absent. */
  numOutputs?: number;
}

export interface AudioStepReport {
  /** Frames whose every codebook has been generated. */
  index: number;
  /** Frames the request makes. */
  count: number;
}

export interface AudioGenerateHooks {
  /** Checked before every decoder step: once aborted, generate frees what it holds and rejects with the signal's reason. */
  signal: AbortSignal;
  /** Called after every decoder step. */
  onStep(report: AudioStepReport): void;
}

export interface GeneratedAudio {
  /** Samples in [-1, 1] (not clipped), channels interleaved. */
  samples: Float32Array;
  sampleRate: number;
  channels: number;
  seed: number;
  /** The generated codes, [codebooks][frames], after any delay pattern is undone. */
  codes: number[][];
}

export interface AudioGenerateResult {
  outputs: GeneratedAudio[];
  encodeMs: number;
  /** Decoder steps and audio decoding. */
  generateMs: number;
  /** Decoder steps run (the model's tokens per second is decoderSteps / generateMs). */
  decoderSteps: number;
}

export interface LoadedAudioPipeline {
  /** Memory the loaded model holds, for the session cache's budget. */
  readonly sizeBytes: number;
  generate(request: AudioGenerateRequest, hooks: AudioGenerateHooks): Promise<AudioGenerateResult>;
  release(): Promise<void>;
}

export interface AudioLoadOptions extends LoadOptions {
  /** Which precision of the graphs to prefer where a folder holds several (see the pipeline's variant rule). */
  variant?: string;
}

export type AudioPipelineLoader = (dir: string, options: AudioLoadOptions) => Promise<LoadedAudioPipeline>;

/** A closed range with the value used when a request leaves it out. */
export interface ParameterRange {
  min: number;
  max: number;
  default: number;
}

/**
 * What an audio pipeline accepts for one model, for the API to validate requests and estimate
 * their time without importing the pipeline.
 */
export interface AudioModelDeclaration {
  pipeline: string;
  durationSeconds: ParameterRange;
  guidanceScale: ParameterRange;
  /** Whole numbers; 0 samples among the whole vocabulary. */
  topK: ParameterRange;
  /** 0 is greedy. */
  temperature: ParameterRange;
  sampleRate: number;
  channels: number;
  /** Audio frames per second of audio. */
  frameRate: number;
  /** Decoder steps per frame beyond the first ones (steps = frames × stepsPerFrame + extraSteps). */
  stepsPerFrame: number;
  extraSteps: number;
  /** Decoder steps per second of wall time on the machine that measured it, or null where not measured. */
  tokensPerSecond: number | null;
}
