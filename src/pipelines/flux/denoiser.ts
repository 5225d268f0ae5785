import type * as ort from 'onnxruntime-node';
import { KilnError } from '../../errors.js';
import { runBatched } from '../onnx/batched-run.js';
import { type Port, tensorFor } from '../onnx/tensor-io.js';
import { latentImageIds, PACKED_WIDTH } from './latents.js';
import type { FluxConditioning } from './prompt-encoding.js';
import type { FluxSessions } from './sessions.js';

export interface DenoiserOptions {
  numImages: number;
  /** Packed tokens per image: (h/2)·(w/2). */
  tokensHigh: number;
  tokensWide: number;
  /** dev's distilled guidance, fed raw to a transformer that takes `guidance`; schnell's takes none. */
  guidanceScale: number;
}

/** The transformer with everything but the latents and the timestep fixed for one generation. */
export interface FluxDenoiser {
  /** The velocity for packed latents [n, tokens, 64] at `timestep` (σ, the t/1000 FluxPipeline passes). */
  velocity(latents: Float32Array, timestep: number): Promise<Float32Array>;
}

/**
 * Every image of a generation has the same prompt, so the text states, pooled vector, ids and
 * guidance of one transformer run are the same for every run of the generation (in runs of the
 * graph's fixed batch where it has one): they are built once, and a step only wraps the latents.
 */
export function createFluxDenoiser(sessions: FluxSessions, cond: FluxConditioning, opts: DenoiserOptions): FluxDenoiser {
  const t = sessions.transformer;
  const n = opts.numImages;
  const chunk = t.batch ?? n;
  if (n % chunk !== 0) throw new KilnError('BAD_USER_INPUT', `this model's transformer runs batches of ${chunk}, and this request makes ${n} images`);
  const tokens = opts.tokensHigh * opts.tokensWide;
  const tile = (row: Float32Array) => {
    const out = new Float32Array(chunk * row.length);
    for (let r = 0; r < chunk; r++) out.set(row, r * row.length);
    return out;
  };
  const constant: Record<string, ort.Tensor> = {
    [t.encoderHiddenStates.name]: tensorFor(t.encoderHiddenStates, tile(cond.states), [chunk, cond.length, cond.width]),
    [t.pooledProjections.name]: tensorFor(t.pooledProjections, tile(cond.pooled), [chunk, cond.pooled.length]),
    [t.imgIds.name]: ids(t.imgIds, latentImageIds(opts.tokensHigh, opts.tokensWide), tokens, chunk),
    [t.txtIds.name]: ids(t.txtIds, new Float32Array(cond.length * 3), cond.length, chunk),
  };
  // diffusers makes guidance a float32 [batch] of the raw scale.
  if (t.guidance) constant[t.guidance.name] = perRow(t.guidance, opts.guidanceScale, chunk);
  const perImage = tokens * PACKED_WIDTH;

  return {
    async velocity(latents, timestep) {
      const step = perRow(t.timestep, timestep, chunk);
      const out = await runBatched(
        t.session,
        n,
        chunk,
        (start, count) => ({
          ...constant,
          [t.hiddenStates.name]: tensorFor(t.hiddenStates, latents.subarray(start * perImage, (start + count) * perImage), [count, tokens, PACKED_WIDTH]),
          [t.timestep.name]: step,
        }),
        t.output,
      );
      if (out.length !== n * perImage) throw new Error(`the transformer returned ${out.length} values for ${n} × ${tokens} tokens of ${PACKED_WIDTH}`);
      return out;
    },
  };
}

/** Position ids [rows, 3], with a leading batch axis where the graph declares one (older exports). */
function ids(port: Port, values: Float32Array, rows: number, batch: number): ort.Tensor {
  if (port.shape.length !== 3) return tensorFor(port, values, [rows, 3]);
  const b = typeof port.shape[0] === 'number' && port.shape[0] > 0 ? port.shape[0] : batch;
  const out = new Float32Array(b * values.length);
  for (let i = 0; i < b; i++) out.set(values, i * values.length);
  return tensorFor(port, out, [b, rows, 3]);
}

/** One value per batch row ([batch]), or a scalar where the graph takes one. */
function perRow(port: Port, value: number, batch: number): ort.Tensor {
  if (port.shape.length === 0) return tensorFor(port, [value], []);
  return tensorFor(port, new Float32Array(batch).fill(value), [batch]);
}
