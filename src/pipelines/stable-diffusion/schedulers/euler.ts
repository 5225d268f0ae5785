import { denoisedAtSigma } from './prediction.js';
import type { Scheduler } from './scheduler.js';
import type { SchedulerConfig } from './scheduler-config.js';
import { sigmaSchedule } from './sigma-schedule.js';

/** diffusers' EulerDiscreteScheduler without churn (s_churn = 0, its default): deterministic. */
export function createEulerScheduler(config: SchedulerConfig, steps: number): Scheduler {
  const { timesteps, sigmas, initNoiseSigma } = sigmaSchedule(config, steps);
  return {
    timesteps,
    sigmas,
    initNoiseSigma,
    inputScale: (i) => 1 / Math.sqrt(sigmas[i]! ** 2 + 1),
    step(i, output, sample) {
      const sigma = sigmas[i]!;
      const denoised = denoisedAtSigma(config.predictionType, output, sample, sigma);
      const ratio = (sigmas[i + 1]! - sigma) / sigma;
      const prev = new Float32Array(sample.length);
      for (let k = 0; k < prev.length; k++) prev[k] = sample[k]! + (sample[k]! - denoised[k]!) * ratio;
      return { prev, denoised };
    },
  };
}
