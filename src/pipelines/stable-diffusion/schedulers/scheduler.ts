import { createDdimScheduler } from './ddim.js';
import { createEulerAncestralScheduler } from './euler-ancestral.js';
import { createEulerScheduler } from './euler.js';
import { createLcmScheduler } from './lcm.js';
import { createPndmScheduler } from './pndm.js';
import type { SchedulerConfig } from './scheduler-config.js';

/**
 * A sampler over one generation's latents, set up for a step count (diffusers' `set_timesteps`).
 * Latents are flat float32 arrays; every operation is element-wise, so the batch layout does
 * not matter to it.
 */
export interface Scheduler {
  /** The timestep of each UNet run, in order (PNDM runs one more than the step count). */
  readonly timesteps: readonly number[];
  /** Euler-family noise levels: one per timestep, then the final one. */
  readonly sigmas?: Float32Array;
  /** What standard-normal noise is scaled by to make the first latents. */
  readonly initNoiseSigma: number;
  /** What the latents are multiplied by before UNet run `index` (`scale_model_input`). */
  inputScale(index: number): number;
  /**
   * Moves `sample` one step on from the UNet's output. `noise` draws fresh standard-normal
   * noise of the latents' size, for the samplers that add it. Returns the next latents and the
   * current estimate of the clean latents (for previews).
   */
  step(index: number, modelOutput: Float32Array, sample: Float32Array, noise: () => Float32Array): StepResult;
}

export interface StepResult {
  prev: Float32Array;
  denoised: Float32Array;
}

/** The scheduler `config.name`, set up for `steps` steps. */
export function createScheduler(config: SchedulerConfig, steps: number): Scheduler {
  if (!Number.isInteger(steps) || steps < 1 || steps > config.numTrainTimesteps) {
    throw new RangeError(`steps must be a whole number between 1 and ${config.numTrainTimesteps}`);
  }
  switch (config.name) {
    case 'euler':
      return createEulerScheduler(config, steps);
    case 'euler_ancestral':
      return createEulerAncestralScheduler(config, steps);
    case 'ddim':
      return createDdimScheduler(config, steps);
    case 'lcm':
      return createLcmScheduler(config, steps);
    case 'pndm':
      return createPndmScheduler(config, steps);
  }
}
