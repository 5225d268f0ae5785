import { KilnError } from '../../errors.js';
import type { GenerateHooks, GenerateRequest, GenerateResult, LoadedPipeline, LoadOptions } from '../pipeline.js';
import { seedFor } from '../pipeline.js';
import { type ClipTokenizer, loadClipTokenizer } from '../clip-tokenizer.js';
import { toRgb8 } from '../decoded-image.js';
import { createDenoiser, type GuidanceMode } from './denoiser.js';
import { latentPreview } from '../latent-preview.js';
import { inspectStableDiffusionFolder, type StableDiffusionFolder } from './model-folder.js';
import { encodePrompts } from './prompt-encoding.js';
import { denoiseLatents, schedulerFor, startingLatents } from './sampling.js';
import { openSessions, type StableDiffusionSessions } from './sessions.js';
import { decodeLatents, VAE_FACTOR } from './vae-decode.js';

/**
 * Stable Diffusion (SD 1.x, 2.x, SD-Turbo, LCM) from ONNX graphs, as diffusers'
 * StableDiffusionPipeline runs it: prompt → CLIP tokens → text encoder; seeded noise scaled by
 * the scheduler's initial σ; one UNet run per timestep (negative and positive prompt in one
 * batch under classifier-free guidance) and a scheduler step; latents / scaling factor → VAE
 * decoder → 8-bit RGB. Seeds and noise as in sampling.ts.
 */
export interface StableDiffusionPipeline extends LoadedPipeline {
  readonly folder: StableDiffusionFolder;
  /** The pipeline's own sessions, for benchmarks that time them bare. */
  readonly sessions: StableDiffusionSessions;
  /** As `generate`, and each image also as float32 [height, width, 3] in [0, 1], before rounding to 8 bits. */
  generateWithPixels(request: GenerateRequest, hooks: GenerateHooks): Promise<GenerateResult & { pixels: Float32Array[] }>;
}

// Room for activations and onnxruntime's arenas beside the weights, for the session cache's budget.
const MEMORY_PER_WEIGHT_BYTE = 1.5;

export async function loadStableDiffusionPipeline(dir: string, options: LoadOptions): Promise<StableDiffusionPipeline> {
  const folder = await inspectStableDiffusionFolder(dir);
  const tokenizer = await loadClipTokenizer(folder.tokenizer);
  const sessions = await openSessions(folder, options);
  const generateWithPixels = (request: GenerateRequest, hooks: GenerateHooks) => generate(folder, tokenizer, sessions, request, hooks);
  return {
    folder,
    sessions,
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
  folder: StableDiffusionFolder,
  tokenizer: ClipTokenizer,
  sessions: StableDiffusionSessions,
  req: GenerateRequest,
  hooks: GenerateHooks,
): Promise<GenerateResult & { pixels: Float32Array[] }> {
  const t0 = performance.now();
  const scheduler = schedulerFor(folder.schedulerConfig, folder.defaults.scheduler, req);
  const [latentHeight, latentWidth] = latentSize(sessions, req);
  const n = req.numImages;
  if (!Number.isInteger(n) || n < 1) throw refuse('numImages must be a whole number of at least 1');
  const perImage = 4 * latentHeight * latentWidth;
  const mode: GuidanceMode = sessions.io.timestepCond ? 'embedding' : req.guidanceScale > 1 ? 'cfg' : 'none';
  checkBatches(sessions, mode === 'cfg' ? 2 : 1, n);

  const prompts = await encodePrompts(sessions, tokenizer, mode === 'cfg' ? [req.negativePrompt ?? '', req.prompt] : [req.prompt]);
  try {
    const denoiser = await createDenoiser(sessions, prompts, {
      mode,
      guidanceScale: req.guidanceScale,
      numImages: n,
      latentHeight,
      latentWidth,
      embeddingWidth: folder.timeCondProjDim,
    });
    const t1 = performance.now();

    const seeds = Array.from({ length: n }, (_, i) => seedFor(req.seed, i));
    const start = startingLatents(req, seeds, perImage, scheduler.initNoiseSigma);
    const latents = await denoiseLatents(scheduler, denoiser, start, seeds, hooks, (denoised) => latentPreview(denoised.subarray(0, perImage), latentHeight, latentWidth));
    const pixels = await decodeLatents(sessions, latents, n, latentHeight, latentWidth, folder.vaeScalingFactor);
    const t2 = performance.now();
    return {
      images: pixels.map((p, i) => ({ width: req.width, height: req.height, seed: seeds[i]!, data: toRgb8(p) })),
      pixels,
      encodeMs: t1 - t0,
      generateMs: t2 - t1,
    };
  } finally {
    prompts.dispose();
  }
}

const refuse = (message: string) => new KilnError('BAD_USER_INPUT', message);

function latentSize(sessions: StableDiffusionSessions, req: GenerateRequest): [number, number] {
  for (const [side, value] of [['width', req.width], ['height', req.height]] as const) {
    if (!Number.isInteger(value) || value < VAE_FACTOR || value % VAE_FACTOR !== 0) throw refuse(`${side} must be a positive multiple of ${VAE_FACTOR}`);
  }
  const size: [number, number] = [req.height / VAE_FACTOR, req.width / VAE_FACTOR];
  const fixed = sessions.latentSize;
  if (fixed && (fixed[0] !== size[0] || fixed[1] !== size[1])) {
    throw refuse(`this model's UNet only makes ${fixed[1] * VAE_FACTOR}×${fixed[0] * VAE_FACTOR} images`);
  }
  return size;
}

/** Static-shape graphs run fixed batches; refuses requests whose batches do not divide into them. */
function checkBatches(sessions: StableDiffusionSessions, prompts: number, images: number) {
  const runs = [
    ['text encoder', sessions.batch.textEncoder, prompts],
    ['UNet', sessions.batch.unet, prompts * images],
    ['VAE decoder', sessions.batch.vaeDecoder, images],
  ] as const;
  for (const [graph, batch, rows] of runs) {
    if (batch !== null && rows % batch !== 0) throw refuse(`this model's ${graph} runs batches of ${batch}, and this request gives it ${rows}`);
  }
}
