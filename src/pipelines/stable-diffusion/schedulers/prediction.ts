import type { PredictionType } from './scheduler-config.js';

/** The clean latents a UNet output implies, for the three things a UNet may be trained to predict. */

/** In σ parametrisation (Euler samplers: x = x₀ + σ·ε, the UNet fed x / √(σ²+1)). */
export function denoisedAtSigma(type: PredictionType, output: Float32Array, sample: Float32Array, sigma: number): Float32Array {
  const out = new Float32Array(sample.length);
  if (type === 'epsilon') {
    for (let i = 0; i < out.length; i++) out[i] = sample[i]! - sigma * output[i]!;
  } else if (type === 'v_prediction') {
    const a = -sigma / Math.sqrt(sigma * sigma + 1);
    const b = 1 / (sigma * sigma + 1);
    for (let i = 0; i < out.length; i++) out[i] = output[i]! * a + sample[i]! * b;
  } else {
    out.set(output);
  }
  return out;
}

/** In ᾱ parametrisation (DDIM, LCM, PNDM: x = √ᾱ·x₀ + √(1−ᾱ)·ε): the clean latents and the noise. */
export function denoisedAtAlpha(
  type: PredictionType,
  output: Float32Array,
  sample: Float32Array,
  alphaProd: number,
): { x0: Float32Array; eps: Float32Array } {
  const a = Math.sqrt(alphaProd);
  const b = Math.sqrt(1 - alphaProd);
  const x0 = new Float32Array(sample.length);
  const eps = new Float32Array(sample.length);
  for (let i = 0; i < x0.length; i++) {
    const x = sample[i]!;
    const m = output[i]!;
    if (type === 'epsilon') {
      x0[i] = (x - b * m) / a;
      eps[i] = m;
    } else if (type === 'v_prediction') {
      x0[i] = a * x - b * m;
      eps[i] = a * m + b * x;
    } else {
      x0[i] = m;
      eps[i] = (x - a * m) / b;
    }
  }
  return { x0, eps };
}

/** Clamps in place to ±range (`clip_sample`). */
export function clip(values: Float32Array, range: number): Float32Array {
  for (let i = 0; i < values.length; i++) values[i] = Math.min(range, Math.max(-range, values[i]!));
  return values;
}
