import { KilnError } from '../../errors.js';
import type { GenerateHooks, GenerateRequest, RgbImage } from '../pipeline.js';
import { SeededRandom } from '../random.js';
import type { Denoiser } from './denoiser.js';
import { createScheduler, type Scheduler } from './schedulers/scheduler.js';
import { isSchedulerName, resolveSchedulerConfig, SCHEDULER_NAMES, type SchedulerName } from './schedulers/scheduler-config.js';

/**
 * What every latent-diffusion pipeline of Kiln (Stable Diffusion, SDXL) does alike: the
 * scheduler a request asks for under the model's config, the seeded starting latents, and the
 * loop of UNet predictions and scheduler steps.
 *
 * Noise comes from Kiln's generator, not PyTorch's: image i's starting latents are
 * SeededRandom(seed + i, stream 0) normals, and the noise ancestral and LCM steps add is drawn
 * from SeededRandom(seed + i, stream 1), so a seed means the same image in Kiln everywhere;
 * a request's `latents` replace the starting noise (to compare with diffusers' `latents=`).
 */

const refuse = (message: string) => new KilnError('BAD_USER_INPUT', message);

/** The request's scheduler (or the model's own), set up for its steps under the model's scheduler_config.json. */
export function schedulerFor(schedulerConfig: Record<string, unknown>, modelDefault: SchedulerName, req: GenerateRequest): Scheduler {
  const name = req.scheduler ?? modelDefault;
  if (!isSchedulerName(name)) throw refuse(`unknown scheduler ${JSON.stringify(name)} (Kiln has ${SCHEDULER_NAMES.join(', ')})`);
  try {
    return createScheduler(resolveSchedulerConfig(schedulerConfig, name), req.steps);
  } catch (err) {
    throw refuse((err as Error).message);
  }
}

/** Standard-normal noise per image (or the request's), times the scheduler's initial σ. */
export function startingLatents(req: GenerateRequest, seeds: number[], perImage: number, sigma: number): Float32Array {
  if (req.latents) {
    if (req.latents.length !== seeds.length * perImage) throw refuse(`latents must hold ${seeds.length * perImage} values ([numImages, 4, height/8, width/8]), not ${req.latents.length}`);
    return req.latents.map((v) => v * sigma);
  }
  const latents = new Float32Array(seeds.length * perImage);
  seeds.forEach((seed, i) => latents.set(new SeededRandom(seed, 0).normals(perImage, sigma), i * perImage));
  return latents;
}

/**
 * Runs every timestep of `scheduler` from `latents` and returns the final latents. Each step is
 * reported with a preview of the current clean-latents estimate (`preview` gets all images'
 * latents and pictures the first); `hooks.signal` is checked before each step and at the end.
 */
export async function denoiseLatents(
  scheduler: Scheduler,
  denoiser: Denoiser,
  start: Float32Array,
  seeds: number[],
  hooks: GenerateHooks,
  preview: (denoised: Float32Array) => RgbImage,
): Promise<Float32Array> {
  const perImage = start.length / seeds.length;
  const stepNoise = seeds.map((seed) => new SeededRandom(seed, 1));
  const noise = () => {
    const z = new Float32Array(start.length);
    stepNoise.forEach((random, i) => z.set(random.normals(perImage), i * perImage));
    return z;
  };
  let latents = start;
  const count = scheduler.timesteps.length;
  for (let i = 0; i < count; i++) {
    hooks.signal.throwIfAborted();
    const prediction = await denoiser.predict(latents, scheduler.timesteps[i]!, scheduler.inputScale(i));
    const { prev, denoised } = scheduler.step(i, prediction, latents, noise);
    latents = prev;
    hooks.onStep({ index: i + 1, count, preview: () => preview(denoised) });
  }
  hooks.signal.throwIfAborted();
  return latents;
}
