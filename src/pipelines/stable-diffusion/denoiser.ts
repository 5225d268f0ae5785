import type * as ort from 'onnxruntime-node';
import { runBatched } from '../onnx/batched-run.js';
import type { EncodedPrompts } from './prompt-encoding.js';
import { type Port, tensorFor } from '../onnx/tensor-io.js';

/**
 * How guidance reaches the UNet: `cfg` runs the unconditional (negative prompt) and the
 * conditional half as one batch and extrapolates, `none` runs the prompt alone (guidance ≤ 1),
 * `embedding` feeds LCM-distilled UNets the guidance scale as `timestep_cond`.
 */
export type GuidanceMode = 'cfg' | 'none' | 'embedding';

export interface DenoiserOptions {
  mode: GuidanceMode;
  guidanceScale: number;
  numImages: number;
  latentHeight: number;
  latentWidth: number;
  /** Width of the guidance embedding, for `embedding` mode when the graph leaves it free. */
  embeddingWidth: number | null;
  /** Further UNet inputs that hold one row per prompt, like the hidden states (SDXL's text_embeds and time_ids). */
  conditions?: PromptCondition[];
}

/** A UNet input fixed for the whole generation: `values` holds one row of `rowDims` per prompt, in the prompts' order. */
export interface PromptCondition {
  port: Port;
  values: Float32Array;
  rowDims: number[];
}

/** The UNet session and what its graph declares, as Stable Diffusion's and SDXL's sessions both describe it. */
export interface UnetGraph {
  unet: ort.InferenceSession;
  io: { sample: Port; timestep: Port; encoderHiddenStates: Port; timestepCond: Port | null; noisePred: string };
  /** The graph's fixed batch size, or null where the batch is free. */
  batch: { unet: number | null };
}

/** The UNet with everything but the latents and timestep fixed for one generation. */
export interface Denoiser {
  /** The guided noise prediction for `latents` ([n, 4, h, w]) at `timestep`, the input scaled by `inputScale` first. */
  predict(latents: Float32Array, timestep: number, inputScale: number): Promise<Float32Array>;
}

const DEFAULT_EMBEDDING_WIDTH = 256;

/**
 * `prompts` holds the encoder's hidden states: [negative, prompt] for `cfg`, [prompt] otherwise,
 * and so does every one of `opts.conditions`. The UNet's batch is [negative × n, prompt × n]
 * (diffusers' order) or [prompt × n].
 */
export async function createDenoiser(graph: UnetGraph, prompts: EncodedPrompts, opts: DenoiserOptions): Promise<Denoiser> {
  const { io } = graph;
  const n = opts.numImages;
  const rows = opts.mode === 'cfg' ? 2 * n : n;
  const chunk = graph.batch.unet ?? rows;
  const perImage = 4 * opts.latentHeight * opts.latentWidth;
  const chunks = Array.from({ length: rows / chunk }, (_, c) => c * chunk);
  /** One tensor per batch chunk, each UNet batch row taking its prompt's row. */
  const tiled = (port: Port, values: Float32Array, rowDims: number[]): ort.Tensor[] => {
    const rowLength = rowDims.reduce((a, b) => a * b, 1);
    const all = new Float32Array(rows * rowLength);
    for (let r = 0; r < rows; r++) {
      const source = opts.mode === 'cfg' && r >= n ? 1 : 0;
      all.set(values.subarray(source * rowLength, (source + 1) * rowLength), r * rowLength);
    }
    return chunks.map((start) => tensorFor(port, all.subarray(start * rowLength, (start + chunk) * rowLength), [chunk, ...rowDims]));
  };

  // Fixed for the whole generation, so built once: a UNet step then only converts the latents.
  let states: ort.Tensor[];
  if (prompts.tensor && prompts.tensor.type === io.encoderHiddenStates.type && prompts.rows === rows && chunk === rows) {
    states = [prompts.tensor];
  } else {
    const values = await prompts.values();
    states = tiled(io.encoderHiddenStates, values, [prompts.sequenceLength, values.length / prompts.rows / prompts.sequenceLength]);
  }
  const conditions = (opts.conditions ?? []).map((c) => ({ name: c.port.name, tensors: tiled(c.port, c.values, c.rowDims) }));
  const conds = opts.mode === 'embedding' ? guidanceCond(io.timestepCond!, opts.guidanceScale, chunk, opts.embeddingWidth) : null;
  const timestepLength = timestepDims(io.timestep, io.sample, chunk);

  return {
    async predict(latents, timestep, inputScale) {
      const input = new Float32Array(rows * perImage);
      for (let i = 0; i < n * perImage; i++) input[i] = latents[i]! * inputScale;
      if (opts.mode === 'cfg') input.copyWithin(n * perImage, 0, n * perImage);
      const t = tensorFor(io.timestep, new Array(timestepLength.reduce((a, b) => a * b, 1)).fill(timestep), timestepLength);
      const feeds = (start: number, count: number) => {
        const c = chunks.indexOf(start);
        const sample = count === rows ? input : input.slice(start * perImage, (start + count) * perImage);
        return {
          [io.sample.name]: tensorFor(io.sample, sample, [count, 4, opts.latentHeight, opts.latentWidth]),
          [io.timestep.name]: t,
          [io.encoderHiddenStates.name]: states[c]!,
          ...Object.fromEntries(conditions.map(({ name, tensors }) => [name, tensors[c]!])),
          ...(conds ? { [io.timestepCond!.name]: conds } : {}),
        };
      };
      const out = await runBatched(graph.unet, rows, chunk, feeds, io.noisePred);
      if (opts.mode !== 'cfg') return out;
      const g = opts.guidanceScale;
      const guided = new Float32Array(n * perImage);
      for (let i = 0; i < guided.length; i++) {
        const uncond = out[i]!;
        guided[i] = uncond + g * (out[n * perImage + i]! - uncond);
      }
      return guided;
    },
  };
}

/**
 * Integer timestep inputs (most exports) get the nearest integer: PyTorch feeds Euler's
 * fractional timesteps as they are and diffusers' ONNX pipeline truncates them; rounding stays
 * closest to the former. The input is a scalar, one value, or one per batch row when its
 * length is the batch's free dimension.
 */
function timestepDims(timestep: Port, sample: Port, batch: number): number[] {
  if (timestep.shape.length === 0) return [];
  const d = timestep.shape[0];
  if (typeof d === 'number' && d > 0) return [d];
  return d === sample.shape[0] ? [batch] : [1];
}

/** diffusers' get_guidance_scale_embedding of w = guidance − 1, one row per batch item. */
function guidanceCond(port: Port, guidanceScale: number, rows: number, width: number | null): ort.Tensor {
  const dim = typeof port.shape[1] === 'number' && port.shape[1] > 0 ? port.shape[1] : (width ?? DEFAULT_EMBEDDING_WIDTH);
  const w = (guidanceScale - 1) * 1000;
  const half = Math.floor(dim / 2);
  const scale = Math.log(10000) / (half - 1);
  const row = new Float32Array(dim);
  for (let j = 0; j < half; j++) {
    const angle = w * Math.exp(-j * scale);
    row[j] = Math.sin(angle);
    row[half + j] = Math.cos(angle);
  }
  const all = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) all.set(row, r * dim);
  return tensorFor(port, all, [rows, dim]);
}
