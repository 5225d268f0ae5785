import { alphasCumprod, trainingSigmas } from './noise-schedule.js';
import type { SchedulerConfig } from './scheduler-config.js';
import { npLinspace, spacedTimesteps } from './timestep-spacing.js';

/**
 * The Euler samplers' schedule (diffusers' EulerDiscreteScheduler.set_timesteps): timesteps
 * spaced as configured, each one's σ interpolated linearly in the training sigmas, optionally
 * respaced after Karras et al. (ρ = 7), then the final σ. Values are float32, as diffusers'.
 */
export interface SigmaSchedule {
  timesteps: number[];
  sigmas: Float32Array;
  initNoiseSigma: number;
}

const f = Math.fround;
const KARRAS_RHO = 7;

export function sigmaSchedule(config: SchedulerConfig, steps: number): SigmaSchedule {
  const cumprod = alphasCumprod(config);
  const train = trainingSigmas(cumprod);
  let timesteps = spacedTimesteps(config.timestepSpacing, config.numTrainTimesteps, steps, config.stepsOffset).map(f);
  let sigmas = timesteps.map((t) => interpolate(t, train));
  if (config.useKarrasSigmas) {
    sigmas = karras(sigmas, config);
    const logSigmas = Array.from(train, (s) => Math.log(s));
    timesteps = sigmas.map((s) => f(sigmaToTimestep(s, logSigmas)));
  }
  const last = config.finalSigmasType === 'zero' ? 0 : f(Math.sqrt(f(f(1 - cumprod[0]!) / cumprod[0]!)));
  const all = Float32Array.from([...sigmas, last]);
  const max = all.reduce((m, s) => Math.max(m, s), 0);
  // diffusers starts `leading` schedules from √(σ_max² + 1), the others from σ_max.
  const initNoiseSigma = config.timestepSpacing === 'leading' ? f(Math.sqrt(f(f(max * max) + 1))) : max;
  return { timesteps, sigmas: all, initNoiseSigma };
}

/** `np.interp(t, arange(len(table)), table)`. */
function interpolate(t: number, table: Float32Array): number {
  const last = table.length - 1;
  if (t <= 0) return table[0]!;
  if (t >= last) return table[last]!;
  const j = Math.floor(t);
  return (table[j + 1]! - table[j]!) * (t - j) + table[j]!;
}

function karras(sigmas: number[], config: SchedulerConfig): number[] {
  const sigmaMin = config.sigmaMin ?? sigmas.at(-1)!;
  const sigmaMax = config.sigmaMax ?? sigmas[0]!;
  const minInv = sigmaMin ** (1 / KARRAS_RHO);
  const maxInv = sigmaMax ** (1 / KARRAS_RHO);
  return npLinspace(0, 1, sigmas.length).map((r) => (maxInv + r * (minInv - maxInv)) ** KARRAS_RHO);
}

/** The fractional training timestep whose σ is `sigma`, interpolating in log σ (diffusers' `_sigma_to_t`). */
function sigmaToTimestep(sigma: number, logSigmas: number[]): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  let low = 0;
  for (let i = 0; i < logSigmas.length; i++) if (logSigma - logSigmas[i]! >= 0) low = i;
  low = Math.min(low, logSigmas.length - 2);
  const w = Math.min(1, Math.max(0, (logSigmas[low]! - logSigma) / (logSigmas[low]! - logSigmas[low + 1]!)));
  return (1 - w) * low + w * (low + 1);
}
