import type { RgbImage } from '../pipeline.js';

/**
 * A preview of latents without the VAE: each latent pixel's four channels projected linearly to
 * RGB with the factors commonly used for SD 1.x/2.x latents (ComfyUI's and A1111's "latent to
 * RGB" approximation), then averaged down to at most `maxSize` pixels on the longer side.
 */
const LATENT_RGB_FACTORS = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.7177],
] as const;

/** `latents` holds one image's [4, height, width] latents (unscaled, as the UNet sees them). */
export function latentPreview(latents: Float32Array, height: number, width: number, maxSize = 64): RgbImage {
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
      for (let c = 0; c < 4; c++) {
        const v = latents[c * plane + p]!;
        const f = LATENT_RGB_FACTORS[c];
        sums[q * 3]! += v * f[0];
        sums[q * 3 + 1]! += v * f[1];
        sums[q * 3 + 2]! += v * f[2];
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
