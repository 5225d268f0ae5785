import path from 'node:path';
import { KilnError } from '../../errors.js';
import { ensureMemory, estimateMemory, type MemoryEstimate } from '../onnx/memory-estimate.js';
import type { GenerateHooks, GenerateRequest, GenerateResult, LoadedPipeline, LoadOptions } from '../pipeline.js';
import { seedFor } from '../pipeline.js';
import { SeededRandom } from '../random.js';
import { loadClipTokenizer } from '../clip-tokenizer.js';
import { toRgb8 } from '../decoded-image.js';
import { createFluxDenoiser } from './denoiser.js';
import { latentPreview } from '../latent-preview.js';
import { FLUX_LATENT_RGB } from './latent-preview.js';
import { LATENT_CHANNELS, latentSide, packLatents, SIDE_STEP, unpackLatents } from './latents.js';
import { type FluxFolder, inspectFluxFolder } from './model-folder.js';
import { conditioningFromEmbeddings, encodeFluxPrompt, type FluxConditioning, type FluxTokenizers } from './prompt-encoding.js';
import { eulerStep, FLOW_MATCH_EULER, flowMatchSchedule } from './schedule.js';
import { type FluxSessions, openFluxSessions } from './sessions.js';
import { loadT5Tokenizer } from './t5-tokenizer.js';
import { decodeFluxLatents } from './vae-decode.js';

/**
 * FLUX.1 schnell and dev from ONNX graphs, as diffusers' FluxPipeline runs them: the prompt
 * through CLIP (pooled) and T5 (states, up to 256 or 512 tokens), or precomputed embeddings;
 * noise [n, 16, h, w] packed into 2×2 tokens; the flow-matching Euler schedule (shifted for the
 * resolution for dev); one transformer run per step taking σ as its timestep, dev's guidance
 * scale as an input, and position ids; then the latents unpacked, unscaled and shifted into the
 * VAE decoder. There is no classifier-free guidance, so a negative prompt is not used.
 *
 * Noise comes from Kiln's generator: image i's latents are SeededRandom(seed + i, stream 0)
 * normals in the unpacked layout, the same layout as a request's `latents` (diffusers'
 * `randn_tensor` shape before `_pack_latents`).
 */
export interface FluxPipeline extends LoadedPipeline {
  readonly folder: FluxFolder;
  /** The pipeline's own sessions, for benchmarks that time them bare. */
  readonly sessions: FluxSessions;
  readonly memory: MemoryEstimate;
  /** As `generate`, and each image also as float32 [height, width, 3] in [0, 1], before rounding to 8 bits. */
  generateWithPixels(request: GenerateRequest, hooks: GenerateHooks): Promise<GenerateResult & { pixels: Float32Array[] }>;
}

export async function loadFluxPipeline(dir: string, options: LoadOptions): Promise<FluxPipeline> {
  const folder = await inspectFluxFolder(dir);
  const memory = estimateMemory([...folder.summaries.values()], { executionProviders: options.executionProviders });
  ensureMemory(`the FLUX.1 ${folder.variant} model in ${path.basename(dir)}`, memory);
  const tokenizers: FluxTokenizers | null = folder.tokenizers ? { clip: await loadClipTokenizer(folder.tokenizers.clip), t5: await loadT5Tokenizer(folder.tokenizers.t5) } : null;
  const sessions = await openFluxSessions(folder, options);
  const generateWithPixels = (request: GenerateRequest, hooks: GenerateHooks) => generate(folder, tokenizers, sessions, request, hooks);
  return {
    folder,
    sessions,
    memory,
    sizeBytes: Math.round(memory.weightBytes * memory.activationFactor),
    generateWithPixels,
    async generate(request, hooks) {
      const { pixels: _, ...result } = await generateWithPixels(request, hooks);
      return result;
    },
    release: () => sessions.release(),
  };
}

const refuse = (message: string, field?: string) => new KilnError('BAD_USER_INPUT', message, field ? { field } : {});

async function generate(
  folder: FluxFolder,
  tokenizers: FluxTokenizers | null,
  sessions: FluxSessions,
  req: GenerateRequest,
  hooks: GenerateHooks,
): Promise<GenerateResult & { pixels: Float32Array[] }> {
  const t0 = performance.now();
  for (const [side, value] of [['width', req.width], ['height', req.height]] as const) {
    if (!Number.isInteger(value) || value < SIDE_STEP || value % SIDE_STEP !== 0) throw refuse(`${side} must be a positive multiple of ${SIDE_STEP}`, side);
  }
  if (!Number.isInteger(req.steps) || req.steps < 1) throw refuse('steps must be a whole number of at least 1', 'steps');
  if (req.scheduler && req.scheduler !== FLOW_MATCH_EULER) throw refuse(`FLUX.1 runs only the ${FLOW_MATCH_EULER} scheduler, not ${JSON.stringify(req.scheduler)}`, 'scheduler');
  const n = req.numImages;
  if (!Number.isInteger(n) || n < 1) throw refuse('numImages must be a whole number of at least 1', 'numImages');
  const [h, w] = [latentSide(req.height), latentSide(req.width)];
  const perImage = LATENT_CHANNELS * h * w;
  const seeds = Array.from({ length: n }, (_, i) => seedFor(req.seed, i));
  const noise = startingNoise(req, seeds, perImage);

  let cond: FluxConditioning;
  if (req.embeddings) cond = conditioningFromEmbeddings(req.embeddings, folder);
  else if (tokenizers) cond = await encodeFluxPrompt(sessions, tokenizers, req.prompt, folder.maxSequenceLength);
  else throw refuse('this model has no text encoders: give the prompt as embeddings', 'embeddings');
  const t1 = performance.now();

  const tokens = (h / 2) * (w / 2);
  const schedule = flowMatchSchedule(folder.scheduler, req.steps, tokens);
  const denoiser = createFluxDenoiser(sessions, cond, { numImages: n, tokensHigh: h / 2, tokensWide: w / 2, guidanceScale: req.guidanceScale });
  let latents = packLatents(noise, n, LATENT_CHANNELS, h, w);
  const count = schedule.timesteps.length;
  for (let i = 0; i < count; i++) {
    hooks.signal.throwIfAborted();
    // FluxPipeline passes timestep / 1000 (the transformer multiplies by 1000 itself), in float32.
    const velocity = await denoiser.velocity(latents, Math.fround(schedule.timesteps[i]! / 1000));
    latents = eulerStep(latents, velocity, schedule.sigmas[i]!, schedule.sigmas[i + 1]!);
    const snapshot = latents.subarray(0, tokens * LATENT_CHANNELS * 4);
    hooks.onStep({ index: i + 1, count, preview: () => latentPreview(unpackLatents(snapshot, 1, LATENT_CHANNELS, h, w), h, w, 64, FLUX_LATENT_RGB) });
  }
  hooks.signal.throwIfAborted();
  const pixels = await decodeFluxLatents(sessions, unpackLatents(latents, n, LATENT_CHANNELS, h, w), n, h, w, folder.vae);
  const t2 = performance.now();
  return {
    images: pixels.map((p, i) => ({ width: w * 8, height: h * 8, seed: seeds[i]!, data: toRgb8(p) })),
    pixels,
    encodeMs: t1 - t0,
    generateMs: t2 - t1,
  };
}

/** Standard-normal noise per image in the unpacked layout [n, 16, h, w], or the request's. */
function startingNoise(req: GenerateRequest, seeds: number[], perImage: number): Float32Array {
  if (req.latents) {
    if (req.latents.length !== seeds.length * perImage) {
      throw refuse(`latents must hold ${seeds.length * perImage} values ([numImages, 16, height/8, width/8]), not ${req.latents.length}`, 'latents');
    }
    return req.latents;
  }
  const noise = new Float32Array(seeds.length * perImage);
  seeds.forEach((seed, i) => noise.set(new SeededRandom(seed, 0).normals(perImage), i * perImage));
  return noise;
}
