/** What every pipeline (built-in, Stable Diffusion, …) offers the worker. Knows nothing of jobs. */

export interface GenerateRequest {
  prompt: string;
  negativePrompt: string | null;
  steps: number;
  guidanceScale: number;
  width: number;
  height: number;
  /** Seed of the first image; image i uses seed + i (wrapping at 2^32). */
  seed: number;
  numImages: number;
  /** Sampler to run, for pipelines that offer several (e.g. `euler`, `ddim`); null or absent: the model's own. */
  scheduler?: string | null;
  /**
   * Starting noise instead of noise drawn from the seeds: standard normal values, laid out as
   * the pipeline's latents ([numImages, 4, height/8, width/8] for Stable Diffusion, unpacked
   * [numImages, 16, height/8, width/8] for FLUX), before any scaling or packing (the meaning of
   * diffusers' `latents=`). Pipelines without latents ignore it.
   */
  latents?: Float32Array;
  /**
   * Text conditioning computed elsewhere, used instead of tokenizing and encoding the prompts
   * (reference checks, folders shipped without text encoders): diffusers' `prompt_embeds`,
   * `pooled_prompt_embeds` and their negative counterparts, in diffusers' shapes.
   */
  embeddings?: PromptEmbeddings;
  /** SDXL micro-conditioning, as [height, width] and [top, left]; defaults as diffusers'. */
  originalSize?: [number, number];
  cropsCoordsTopLeft?: [number, number];
  targetSize?: [number, number];
}

/** A float32 tensor in row-major order. */
export interface Float32Tensor {
  data: Float32Array;
  dims: number[];
}

export interface PromptEmbeddings {
  /** [1, L, D] */
  prompt: Float32Tensor;
  /** [1, P] */
  pooled?: Float32Tensor;
  negative?: Float32Tensor;
  negativePooled?: Float32Tensor;
}

/** 8-bit RGB, row-major, no padding. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface GeneratedImage extends RgbImage {
  seed: number;
}

export interface StepReport {
  index: number;
  count: number;
  /** A small picture of the current state, computed only when asked for. */
  preview: () => RgbImage;
}

export interface GenerateHooks {
  /** Checked between steps: once aborted, generate stops and rejects with the signal's reason. */
  signal: AbortSignal;
  onStep(report: StepReport): void;
}

export interface GenerateResult {
  images: GeneratedImage[];
  encodeMs: number;
  generateMs: number;
}

export interface LoadedPipeline {
  /** Memory the loaded model holds, for the session cache's budget. */
  readonly sizeBytes: number;
  generate(request: GenerateRequest, hooks: GenerateHooks): Promise<GenerateResult>;
  release(): Promise<void>;
}

export interface LoadOptions {
  executionProviders: string[];
  intraOpThreads?: number;
  /** Rewrites graph files before their sessions are created (a LoRA merged into a UNet and its text encoders), at most one per file. */
  graphPatches?: GraphPatch[];
}

export interface GraphPatch {
  /** The graph it rewrites, relative to the model's folder (e.g. `unet/model.onnx`). */
  file: string;
  /** Makes the rewritten graph from the file at `graphPath`. */
  open(graphPath: string): Promise<PatchedGraph>;
}

/** A rewritten graph, to create a session from. */
export interface PatchedGraph {
  bytes: Uint8Array;
  /** The folder its external-data locations are relative to. */
  externalDataFolder: string;
  /** Removes what was written for it; called once the session is created. */
  dispose(): Promise<void>;
}

export const seedFor = (seed: number, index: number) => (seed + index) % 2 ** 32;
