import type { RgbImage } from '../pipeline.js';
import { LATENT_CHANNELS } from './latents.js';

/**
 * A preview of FLUX latents without the VAE: each latent pixel's 16 channels projected linearly
 * to RGB with the factors and bias commonly used for FLUX.1's latent space (ComfyUI's latent
 * format for Flux), on the latents as the transformer sees them (scaled and shifted), then
 * averaged down to at most `maxSize` pixels on the longer side and mapped from [−1, 1].
 */
const FLUX_RGB_FACTORS = [
  [-0.0346, 0.0244, 0.0681],
  [0.0034, 0.021, 0.0687],
  [0.0275, -0.0668, -0.0433],
  [-0.0174, 0.016, 0.0617],
  [0.0859, 0.0721, 0.0329],
  [0.0004, 0.0383, 0.0115],
  [0.0405, 0.0861, 0.0915],
  [-0.0236, -0.0185, -0.0259],
  [-0.0245, 0.025, 0.118],
  [0.1008, 0.0755, -0.0421],
  [-0.0515, 0.0201, 0.0011],
  [0.0428, -0.0012, -0.0036],
  [0.0817, 0.0765, 0.0749],
  [-0.1264, -0.0522, -0.1103],
  [-0.028, -0.0881, -0.0499],
  [-0.1262, -0.0982, -0.0778],
] as const;
const FLUX_RGB_BIAS = [-0.0329, -0.0718, -0.0851] as const;

/** `latents` holds one image's unpacked [16, height, width] latents. */
export function fluxLatentPreview(latents: Float32Array, height: number, width: number, maxSize = 64): RgbImage {
  const factor = Math.max(1, Math.ceil(Math.max(height, width) / maxSize));
  const w = Math.ceil(width / factor);
  const h = Math.ceil(height / factor);
  const plane = height * width;
  const sums = new Float32Array(w * h * 3);
  const counts = new Uint32Array(w * h);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const q = Math.floor(y / factor) * w + Math.floor(x / factor);
      counts[q]!++;
      for (let rgb = 0; rgb < 3; rgb++) {
        let v = FLUX_RGB_BIAS[rgb];
        for (let c = 0; c < LATENT_CHANNELS; c++) v += latents[c * plane + p]! * FLUX_RGB_FACTORS[c]![rgb]!;
        sums[q * 3 + rgb]! += v;
      }
    }
  }
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) {
    const v = sums[i]! / counts[Math.floor(i / 3)]!;
    data[i] = Math.round(Math.min(1, Math.max(0, (v + 1) / 2)) * 255);
  }
  return { width: w, height: h, data };
}
