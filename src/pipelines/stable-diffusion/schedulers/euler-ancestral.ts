import { denoisedAtSigma } from './prediction.js';
import type { Scheduler } from './scheduler.js';
import type { SchedulerConfig } from './scheduler-config.js';
import { sigmaSchedule } from './sigma-schedule.js';

/**
 * diffusers' EulerAncestralDiscreteScheduler: an Euler step down to σ_down, then fresh noise
 * of σ_up, so that σ_down² + σ_up² = σ_next².
 */
export function createEulerAncestralScheduler(config: SchedulerConfig, steps: number): Scheduler {
  const { timesteps, sigmas, initNoiseSigma } = sigmaSchedule(config, steps);
  return {
    timesteps,
    sigmas,
    initNoiseSigma,
    inputScale: (i) => 1 / Math.sqrt(sigmas[i]! ** 2 + 1),
    step(i, output, sample, noise) {
      const from = sigmas[i]!;
      const to = sigmas[i + 1]!;
      const up = Math.sqrt((to * to * (from * from - to * to)) / (from * from));
      const down = Math.sqrt(to * to - up * up);
      const denoised = denoisedAtSigma(config.predictionType, output, sample, from);
      const ratio = (down - from) / from;
      const prev = new Float32Array(sample.length);
      for (let k = 0; k < prev.length; k++) prev[k] = sample[k]! + (sample[k]! - denoised[k]!) * ratio;
      if (up > 0) {
        const z = noise();
        for (let k = 0; k < prev.length; k++) prev[k]! += z[k]! * up;
      }
      return { prev, denoised };
    },
  };
}
