import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { openGraph } from '../onnx/graph-session.js';
import { createSessionOptions } from '../onnx/session-options.js';
import type { GenerateHooks, GenerateRequest, GenerateResult, GeneratedImage, LoadedPipeline, LoadOptions, RgbImage } from '../pipeline.js';
import { seedFor } from '../pipeline.js';
import { SeededRandom } from '../random.js';
import { BUILTIN, BUILTIN_DEFAULTS, BUILTIN_FILES } from './model-files.js';
import { builtinTokenIds } from './prompt-tokens.js';

// Pixels per denoiser run: bounds the activations (pixels × hidden floats) at large sizes.
const TILE_PIXELS = 512 * 512;
const PREVIEW_SIZE = 64;

export async function loadBuiltinPipeline(dir: string, options: LoadOptions): Promise<LoadedPipeline> {
  const sessionOptions = createSessionOptions(options);
  const sizes = await Promise.all([BUILTIN_FILES.textEncoder, BUILTIN_FILES.denoiser].map(async (f) => (await fs.stat(path.join(dir, f))).size));
  const encoder = await openGraph(dir, BUILTIN_FILES.textEncoder, options, sessionOptions);
  const denoiser = await openGraph(dir, BUILTIN_FILES.denoiser, options, sessionOptions).catch(async (err) => {
    await encoder.release();
    throw err;
  });
  return {
    sizeBytes: sizes.reduce((a, b) => a + b, 0) * 2,
    generate: (request, hooks) => generate(encoder, denoiser, request, hooks),
    async release() {
      await Promise.all([encoder.release(), denoiser.release()]);
    },
  };
}

async function generate(
  encoder: ort.InferenceSession,
  denoiser: ort.InferenceSession,
  req: GenerateRequest,
  hooks: GenerateHooks,
): Promise<GenerateResult> {
  const t0 = performance.now();
  const promptVector = await encodePrompt(encoder, req);
  const batch = req.numImages;
  const seeds = Array.from({ length: batch }, (_, i) => seedFor(req.seed, i));
  const cond = new Float32Array(batch * (BUILTIN.embed + BUILTIN.style));
  seeds.forEach((seed, b) => {
    cond.set(promptVector, b * (BUILTIN.embed + BUILTIN.style));
    cond.set(builtinStyleVector(seed), b * (BUILTIN.embed + BUILTIN.style) + BUILTIN.embed);
  });
  const t1 = performance.now();

  const pixels = req.width * req.height;
  const coords = pixelCoordinates(req.width, req.height);
  const state = new Float32Array(batch * pixels * 3);
  seeds.forEach((seed, b) => state.set(new SeededRandom(seed, 2).normals(pixels * 3), b * pixels * 3));
  const condTensor = new ort.Tensor('float32', cond, [batch, 1, BUILTIN.embed + BUILTIN.style]);

  for (let k = 1; k <= req.steps; k++) {
    hooks.signal.throwIfAborted();
    const noiseLevel = new ort.Tensor('float32', Float32Array.of(1 - (k - 1) / req.steps), [1, 1, 1]);
    // Moves 1/(steps left) of the way to the estimate: the last step lands on it exactly.
    const mix = new ort.Tensor('float32', Float32Array.of(1 / (req.steps - k + 1)), [1, 1, 1]);
    for (let start = 0; start < pixels; start += TILE_PIXELS) {
      const end = Math.min(pixels, start + TILE_PIXELS);
      const n = end - start;
      const tileState = new Float32Array(batch * n * 3);
      for (let b = 0; b < batch; b++) tileState.set(state.subarray((b * pixels + start) * 3, (b * pixels + end) * 3), b * n * 3);
      const out = await denoiser.run({
        coords: new ort.Tensor('float32', coords.slice(start * 3, end * 3), [1, n, 3]),
        state: new ort.Tensor('float32', tileState, [batch, n, 3]),
        cond: condTensor,
        noise_level: noiseLevel,
        mix,
      });
      const next = out.next_state!.data as Float32Array;
      for (let b = 0; b < batch; b++) state.set(next.subarray(b * n * 3, (b + 1) * n * 3), (b * pixels + start) * 3);
    }
    hooks.onStep({ index: k, count: req.steps, preview: () => downscale(state, req.width, req.height, PREVIEW_SIZE) });
  }
  const t2 = performance.now();
  const images: GeneratedImage[] = seeds.map((seed, b) => ({
    width: req.width,
    height: req.height,
    seed,
    data: toRgb8(state.subarray(b * pixels * 3, (b + 1) * pixels * 3)),
  }));
  return { images, encodeMs: t1 - t0, generateMs: t2 - t1 };
}

/** The style half of an image's conditioning vector, drawn from its seed. */
export function builtinStyleVector(seed: number): Float32Array {
  return new SeededRandom(seed, 1).normals(BUILTIN.style, 0.8);
}

/**
 * The prompt's vector pushed away from the negative prompt's, as classifier-free guidance pushes
 * noise predictions: at guidance 1 the prompt alone counts, higher moves further from the
 * negative prompt (or from the empty prompt when there is none).
 */
export async function encodePrompt(
  encoder: ort.InferenceSession,
  req: Pick<GenerateRequest, 'prompt' | 'negativePrompt' | 'guidanceScale'>,
): Promise<Float32Array> {
  const ids = new BigInt64Array(2 * BUILTIN.tokens);
  ids.set(builtinTokenIds(req.prompt), 0);
  ids.set(builtinTokenIds(req.negativePrompt ?? ''), BUILTIN.tokens);
  const out = await encoder.run({ token_ids: new ort.Tensor('int64', ids, [2, BUILTIN.tokens]) });
  const both = out.prompt_embedding!.data as Float32Array;
  const push = (req.guidanceScale - 1) / BUILTIN_DEFAULTS.guidanceScale;
  const vector = new Float32Array(BUILTIN.embed);
  for (let i = 0; i < BUILTIN.embed; i++) {
    const pos = both[i]!;
    vector[i] = pos + push * (pos - both[BUILTIN.embed + i]!);
  }
  return vector;
}

/** x and y in [-1, 1] along the longer side (so patterns keep their aspect), and the radius. */
export function pixelCoordinates(width: number, height: number): Float32Array {
  const out = new Float32Array(width * height * 3);
  const span = Math.max(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const px = (2 * x + 1 - width) / span;
      const py = (2 * y + 1 - height) / span;
      out[i] = px;
      out[i + 1] = py;
      out[i + 2] = Math.sqrt(px * px + py * py);
    }
  }
  return out;
}

function toRgb8(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.round((Math.min(1, Math.max(-1, values[i]!)) + 1) * 127.5);
  return out;
}

/** Nearest-pixel thumbnail of the first image, at most `size` on its longer side. */
function downscale(state: Float32Array, width: number, height: number, size: number): RgbImage {
  const scale = Math.min(1, size / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const out = new Float32Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(height - 1, Math.floor((y + 0.5) / scale));
    for (let x = 0; x < w; x++) {
      const sx = Math.min(width - 1, Math.floor((x + 0.5) / scale));
      out.set(state.subarray((sy * width + sx) * 3, (sy * width + sx) * 3 + 3), (y * w + x) * 3);
    }
  }
  return { width: w, height: h, data: toRgb8(out) };
}
