import { alphasCumprod } from './noise-schedule.js';
import { clip, denoisedAtAlpha } from './prediction.js';
import type { Scheduler } from './scheduler.js';
import type { SchedulerConfig } from './scheduler-config.js';
import { roundHalfEven, spacedTimesteps } from './timestep-spacing.js';

/** diffusers' DDIMScheduler with η = 0 (the pipelines' default): deterministic. */
export function createDdimScheduler(config: SchedulerConfig, steps: number): Scheduler {
  const cumprod = alphasCumprod(config);
  const final = config.setAlphaToOne ? 1 : cumprod[0]!;
  const timesteps = spacedTimesteps(config.timestepSpacing, config.numTrainTimesteps, steps, config.stepsOffset).map(roundHalfEven);
  // diffusers steps back by ⌊T/n⌋ whatever the spacing.
  const stride = Math.floor(config.numTrainTimesteps / steps);
  return {
    timesteps,
    initNoiseSigma: 1,
    inputScale: () => 1,
    step(i, output, sample) {
      const t = timesteps[i]!;
      const prevT = t - stride;
      const alphaPrev = prevT >= 0 ? cumprod[prevT]! : final;
      const { x0, eps } = denoisedAtAlpha(config.predictionType, output, sample, cumprod[t]!);
      if (config.clipSample) clip(x0, config.clipSampleRange);
      const a = Math.sqrt(alphaPrev);
      const b = Math.sqrt(1 - alphaPrev);
      const prev = new Float32Array(sample.length);
      for (let k = 0; k < prev.length; k++) prev[k] = a * x0[k]! + b * eps[k]!;
      return { prev, denoised: x0 };
    },
  };
}
