import { KilnError } from '../../errors.js';
import type { GenerateHooks, GenerateRequest, GenerateResult, LoadedPipeline, LoadOptions } from '../pipeline.js';
import { seedFor } from '../pipeline.js';
import { SeededRandom } from '../random.js';
import { type ClipTokenizer, loadClipTokenizer } from './clip-tokenizer.js';
import { toRgb8 } from './decoded-image.js';
import { createDenoiser, type GuidanceMode } from './denoiser.js';
import { latentPreview } from './latent-preview.js';
import { inspectStableDiffusionFolder, type StableDiffusionFolder } from './model-folder.js';
import { encodePrompts } from './prompt-encoding.js';
import { createScheduler, type Scheduler } from './schedulers/scheduler.js';
import { isSchedulerName, resolveSchedulerConfig, SCHEDULER_NAMES } from './schedulers/scheduler-config.js';
import { openSessions, type StableDiffusionSessions } from './sessions.js';
import { decodeLatents, VAE_FACTOR } from './vae-decode.js';

/**
 * Stable Diffusion (SD 1.x, 2.x, SD-Turbo, LCM) from ONNX graphs, as diffusers'
 * StableDiffusionPipeline runs it: prompt → CLIP tokens → text encoder; seeded noise scaled by
 * the scheduler's initial σ; one UNet run per timestep (negative and positive prompt in one
 * batch under classifier-free guidance) and a scheduler step; latents / scaling factor → VAE
 * decoder → 8-bit RGB.
 *
 * Noise comes from Kiln's generator, not PyTorch's: image i's starting latents are
 * SeededRandom(seed + i, stream 0) normals, and the noise ancestral and LCM steps add is drawn
 * from SeededRandom(seed + i, stream 1), so a seed means the same image in Kiln everywhere;
 * a request's `latents` replace the starting noise (to compare with diffusers' `latents=`).
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
  const scheduler = schedulerFor(folder, req);
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
    let latents = startingLatents(req, seeds, perImage, scheduler.initNoiseSigma);
    const stepNoise = seeds.map((seed) => new SeededRandom(seed, 1));
    const noise = () => {
      const z = new Float32Array(n * perImage);
      stepNoise.forEach((random, i) => z.set(random.normals(perImage), i * perImage));
      return z;
    };
    const count = scheduler.timesteps.length;
    for (let i = 0; i < count; i++) {
      hooks.signal.throwIfAborted();
      const prediction = await denoiser.predict(latents, scheduler.timesteps[i]!, scheduler.inputScale(i));
      const { prev, denoised } = scheduler.step(i, prediction, latents, noise);
      latents = prev;
      hooks.onStep({ index: i + 1, count, preview: () => latentPreview(denoised.subarray(0, perImage), latentHeight, latentWidth) });
    }
    hooks.signal.throwIfAborted();
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

function schedulerFor(folder: StableDiffusionFolder, req: GenerateRequest): Scheduler {
  const name = req.scheduler ?? folder.defaults.scheduler;
  if (!isSchedulerName(name)) throw refuse(`unknown scheduler ${JSON.stringify(name)} (Kiln has ${SCHEDULER_NAMES.join(', ')})`);
  try {
    return createScheduler(resolveSchedulerConfig(folder.schedulerConfig, name), req.steps);
  } catch (err) {
    throw refuse((err as Error).message);
  }
}

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

/** Standard-normal noise per image (or the request's), times the scheduler's initial σ. */
function startingLatents(req: GenerateRequest, seeds: number[], perImage: number, sigma: number): Float32Array {
  if (req.latents) {
    if (req.latents.length !== seeds.length * perImage) throw refuse(`latents must hold ${seeds.length * perImage} values ([numImages, 4, height/8, width/8]), not ${req.latents.length}`);
    return req.latents.map((v) => v * sigma);
  }
  const latents = new Float32Array(seeds.length * perImage);
  seeds.forEach((seed, i) => latents.set(new SeededRandom(seed, 0).normals(perImage, sigma), i * perImage));
  return latents;
}
