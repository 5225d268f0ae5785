import { KilnError } from '../../errors.js';
import type { GenerateHooks, GenerateRequest, GenerateResult, LoadedPipeline, LoadOptions } from '../pipeline.js';
import { seedFor } from '../pipeline.js';
import { loadClipTokenizer } from '../clip-tokenizer.js';
import { toRgb8 } from '../decoded-image.js';
import { createDenoiser, type GuidanceMode } from '../stable-diffusion/denoiser.js';
import { type LatentRgbProjection, latentPreview } from '../latent-preview.js';
import { denoiseLatents, schedulerFor, startingLatents } from '../stable-diffusion/sampling.js';
import { decodeLatents, VAE_FACTOR } from '../stable-diffusion/vae-decode.js';
import { inspectStableDiffusionXLFolder, type StableDiffusionXLFolder } from './model-folder.js';
import { promptConditioning, type Tokenizers } from './prompt-encoding.js';
import { openSessions, type StableDiffusionXLSessions } from './sessions.js';
import { timeIds } from './time-ids.js';

/**
 * Stable Diffusion XL from ONNX graphs, as diffusers' StableDiffusionXLPipeline runs it: both
 * text encoders' penultimate hidden states, concatenated, and the second's pooled embedding
 * (or the request's embeddings); `time_ids` from the original size, crop and target size;
 * seeded noise scaled by the scheduler's initial σ; one UNet run per timestep, negative and
 * positive halves in one batch under classifier-free guidance; latents / scaling factor (0.13025)
 * → VAE decoder, in float32 where its config says force_upcast → 8-bit RGB. Seeds and noise as
 * in stable-diffusion/sampling.ts.
 */
export interface StableDiffusionXLPipeline extends LoadedPipeline {
  readonly folder: StableDiffusionXLFolder;
  /** The pipeline's own sessions, for benchmarks that time them bare. */
  readonly sessions: StableDiffusionXLSessions;
  /** Width D of the prompt embeddings ([1, L, D]) the UNet takes, where the graph or its config says. */
  readonly embeddingWidth: number | null;
  /** As `generate`, and each image also as float32 [height, width, 3] in [0, 1], before rounding to 8 bits. */
  generateWithPixels(request: GenerateRequest, hooks: GenerateHooks): Promise<GenerateResult & { pixels: Float32Array[] }>;
}

/** SDXL's latent space to RGB, for previews (ComfyUI's fit for the SDXL VAE). */
export const SDXL_LATENT_RGB: LatentRgbProjection = {
  factors: [
    [0.3651, 0.4232, 0.4341],
    [-0.2533, -0.0042, 0.1068],
    [0.1076, 0.1111, -0.0362],
    [-0.3165, -0.2492, -0.2188],
  ],
  bias: [0.1084, -0.0175, -0.0011],
};

// Room for activations and onnxruntime's arenas beside the weights, for the session cache's budget.
const MEMORY_PER_WEIGHT_BYTE = 1.5;

export async function loadStableDiffusionXLPipeline(dir: string, options: LoadOptions): Promise<StableDiffusionXLPipeline> {
  const folder = await inspectStableDiffusionXLFolder(dir);
  const tokenizers: Tokenizers | null = folder.textEncoders
    ? [await loadClipTokenizer(folder.textEncoders.tokenizers[0]), await loadClipTokenizer(folder.textEncoders.tokenizers[1])]
    : null;
  const sessions = await openSessions(folder, options);
  const width = sessions.io.encoderHiddenStates.shape[2];
  const generateWithPixels = (request: GenerateRequest, hooks: GenerateHooks) => generate(folder, tokenizers, sessions, request, hooks);
  return {
    folder,
    sessions,
    embeddingWidth: typeof width === 'number' && width > 0 ? width : folder.unet.crossAttentionDim,
    sizeBytes: Math.round(sessions.sizeBytes * MEMORY_PER_WEIGHT_BYTE),
    generateWithPixels,
    async generate(request, hooks) {
      const { pixels: _, ...result } = await generateWithPixels(request, hooks);
      return result;
    },
    release: () => sessions.release(),
  };
}

async function generate(
  folder: StableDiffusionXLFolder,
  tokenizers: Tokenizers | null,
  sessions: StableDiffusionXLSessions,
  req: GenerateRequest,
  hooks: GenerateHooks,
): Promise<GenerateResult & { pixels: Float32Array[] }> {
  const t0 = performance.now();
  const scheduler = schedulerFor(folder.schedulerConfig, folder.defaults.scheduler, req);
  const [latentHeight, latentWidth] = latentSize(folder, sessions, req);
  const n = req.numImages;
  if (!Number.isInteger(n) || n < 1) throw refuse('numImages must be a whole number of at least 1');
  const perImage = 4 * latentHeight * latentWidth;
  // As diffusers: guidance above 1 runs the negative half too, except on UNets that take it as an embedding.
  const mode: GuidanceMode = sessions.io.timestepCond ? 'embedding' : req.guidanceScale > 1 ? 'cfg' : 'none';
  checkBatches(sessions, mode === 'cfg' ? 2 * n : n, n);

  const conditioning = await promptConditioning(folder, sessions, tokenizers, req, mode === 'cfg');
  const ids = timeIds(req);
  const promptRows = conditioning.prompts.rows;
  const denoiser = await createDenoiser(sessions, conditioning.prompts, {
    mode,
    guidanceScale: req.guidanceScale,
    numImages: n,
    latentHeight,
    latentWidth,
    embeddingWidth: folder.unet.timeCondProjDim,
    conditions: [
      { port: sessions.io.textEmbeds, values: conditioning.pooled, rowDims: [conditioning.pooledWidth] },
      // diffusers' negative time ids are the positive ones unless negative sizes are given, which Kiln's requests have not.
      { port: sessions.io.timeIds, values: Float32Array.from({ length: promptRows * ids.length }, (_, i) => ids[i % ids.length]!), rowDims: [ids.length] },
    ],
  });
  const t1 = performance.now();

  const seeds = Array.from({ length: n }, (_, i) => seedFor(req.seed, i));
  const start = startingLatents(req, seeds, perImage, scheduler.initNoiseSigma);
  const latents = await denoiseLatents(scheduler, denoiser, start, seeds, hooks, (denoised) =>
    latentPreview(denoised.subarray(0, perImage), latentHeight, latentWidth, 64, SDXL_LATENT_RGB),
  );
  const pixels = await decodeLatents(sessions, latents, n, latentHeight, latentWidth, folder.vae.scalingFactor);
  const t2 = performance.now();
  return {
    images: pixels.map((p, i) => ({ width: req.width, height: req.height, seed: seeds[i]!, data: toRgb8(p) })),
    pixels,
    encodeMs: t1 - t0,
    generateMs: t2 - t1,
  };
}

const refuse = (message: string) => new KilnError('BAD_USER_INPUT', message);

/** The latent height and width; sides must divide into the UNet's downsampling (an exported graph cannot pad odd sizes). */
function latentSize(folder: StableDiffusionXLFolder, sessions: StableDiffusionXLSessions, req: GenerateRequest): [number, number] {
  const multiple = folder.sizeMultiple;
  for (const [side, value] of [['width', req.width], ['height', req.height]] as const) {
    if (!Number.isInteger(value) || value < multiple || value % multiple !== 0) {
      throw refuse(`${side} must be a positive multiple of ${multiple}${multiple > VAE_FACTOR ? ` (8 per latent pixel, times ${multiple / VAE_FACTOR} for this model's UNet, which halves the latents as it goes down)` : ''}`);
    }
  }
  const size: [number, number] = [req.height / VAE_FACTOR, req.width / VAE_FACTOR];
  const fixed = sessions.latentSize;
  if (fixed && (fixed[0] !== size[0] || fixed[1] !== size[1])) {
    throw refuse(`this model's UNet only makes ${fixed[1] * VAE_FACTOR}×${fixed[0] * VAE_FACTOR} images`);
  }
  return size;
}

/** Static-shape graphs run fixed batches; refuses requests whose batches do not divide into them. */
function checkBatches(sessions: StableDiffusionXLSessions, unetRows: number, images: number) {
  const runs = [
    ['UNet', sessions.batch.unet, unetRows],
    ['VAE decoder', sessions.batch.vaeDecoder, images],
  ] as const;
  for (const [graph, batch, rows] of runs) {
    if (batch !== null && rows % batch !== 0) throw refuse(`this model's ${graph} runs batches of ${batch}, and this request gives it ${rows}`);
  }
}
