import type { SchedulerConfig } from './scheduler-config.js';

/**
 * The training noise schedule, in the precision diffusers computes it: betas from a float32
 * `torch.linspace`, alphas and their cumulative product stored as float32 (the product itself
 * accumulated in double, as PyTorch's CPU cumprod does). Matching the rounding is what keeps
 * Kiln's sigmas within 1e-6 of diffusers' rather than 1e-5.
 */

const f = Math.fround;

/** `torch.linspace(start, end, steps, dtype=torch.float32)` as its CPU kernel computes it. */
export function linspaceFloat32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  const s = f(start);
  const e = f(end);
  if (steps === 1) {
    out[0] = s;
    return out;
  }
  const step = f(f(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < halfway ? f(s + f(step * i)) : f(e - f(step * (steps - i - 1)));
  return out;
}

function betas(config: SchedulerConfig): Float32Array {
  const n = config.numTrainTimesteps;
  if (config.trainedBetas) return Float32Array.from(config.trainedBetas);
  if (config.betaSchedule === 'linear') return linspaceFloat32(config.betaStart, config.betaEnd, n);
  const roots = linspaceFloat32(Math.sqrt(config.betaStart), Math.sqrt(config.betaEnd), n);
  return roots.map((r) => f(r * r));
}

/** ᾱ_t for t = 0 … numTrainTimesteps−1. */
export function alphasCumprod(config: SchedulerConfig): Float32Array {
  const b = betas(config);
  const out = new Float32Array(b.length);
  let product = 1;
  for (let i = 0; i < b.length; i++) {
    product *= f(1 - b[i]!);
    out[i] = product;
  }
  return out;
}

/** σ_t = √((1 − ᾱ_t) / ᾱ_t), in float32 as torch computes it. */
export function trainingSigmas(cumprod: Float32Array): Float32Array {
  return cumprod.map((a) => f(Math.sqrt(f(f(1 - a) / a))));
}
