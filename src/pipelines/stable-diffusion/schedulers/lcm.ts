import { alphasCumprod } from './noise-schedule.js';
import { clip, denoisedAtAlpha } from './prediction.js';
import type { Scheduler } from './scheduler.js';
import type { SchedulerConfig } from './scheduler-config.js';
import { SchedulerConfigError } from './scheduler-config.js';

const SIGMA_DATA = 0.5;

/**
 * diffusers' LCMScheduler: timesteps picked evenly from the distillation schedule (every
 * T/original_inference_steps-th timestep), each step jumping to the consistency model's clean
 * estimate and, except at the last step, re-noising it to the next timestep.
 */
export function createLcmScheduler(config: SchedulerConfig, steps: number): Scheduler {
  const cumprod = alphasCumprod(config);
  const final = config.setAlphaToOne ? 1 : cumprod[0]!;
  const original = config.originalInferenceSteps;
  if (steps > original) throw new SchedulerConfigError(`the lcm scheduler takes at most ${original} steps (original_inference_steps)`);
  const k = Math.floor(config.numTrainTimesteps / original);
  const origin = Array.from({ length: original }, (_, i) => (original - i) * k - 1);
  // np.floor(np.linspace(0, len, steps, endpoint=False)), rounding as numpy does.
  const stride = origin.length / steps;
  const timesteps = Array.from({ length: steps }, (_, i) => origin[Math.floor(i * stride)]!);
  return {
    timesteps,
    initNoiseSigma: 1,
    inputScale: () => 1,
    step(i, output, sample, noise) {
      const t = timesteps[i]!;
      const prevT = i + 1 < timesteps.length ? timesteps[i + 1]! : t;
      const alphaPrev = prevT >= 0 ? cumprod[prevT]! : final;
      const scaled = t * config.timestepScaling;
      const cSkip = SIGMA_DATA ** 2 / (scaled ** 2 + SIGMA_DATA ** 2);
      const cOut = scaled / Math.sqrt(scaled ** 2 + SIGMA_DATA ** 2);
      const { x0 } = denoisedAtAlpha(config.predictionType, output, sample, cumprod[t]!);
      if (config.clipSample) clip(x0, config.clipSampleRange);
      const denoised = new Float32Array(sample.length);
      for (let j = 0; j < denoised.length; j++) denoised[j] = cOut * x0[j]! + cSkip * sample[j]!;
      if (i === timesteps.length - 1) return { prev: denoised, denoised };
      const z = noise();
      const a = Math.sqrt(alphaPrev);
      const b = Math.sqrt(1 - alphaPrev);
      const prev = new Float32Array(sample.length);
      for (let j = 0; j < prev.length; j++) prev[j] = a * denoised[j]! + b * z[j]!;
      return { prev, denoised };
    },
  };
}
