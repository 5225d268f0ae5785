import type { RgbImage } from '../pipeline.js';

/**
 * A preview of latents without the VAE: each latent pixel's four channels projected linearly to
 * RGB (plus a bias) with factors fitted to a family's latent space, the "latent to RGB"
 * approximation ComfyUI and A1111 use, then averaged down to at most `maxSize` pixels on the
 * longer side and mapped from [−1, 1] to 8 bits.
 */
export interface LatentRgbProjection {
  /** One row per latent channel: its weight in R, G and B. */
  factors: readonly (readonly [number, number, number])[];
  bias: readonly [number, number, number];
}

/** SD 1.x/2.x latents. */
export const SD_LATENT_RGB: LatentRgbProjection = {
  factors: [
    [0.3512, 0.2297, 0.3227],
    [0.325, 0.4974, 0.235],
    [-0.2829, 0.1762, 0.2721],
    [-0.212, -0.2616, -0.7177],
  ],
  bias: [0, 0, 0],
};

/** `latents` holds one image's [channels, height, width] latents (unscaled, as the UNet sees them). */
export function latentPreview(latents: Float32Array, height: number, width: number, maxSize = 64, projection: LatentRgbProjection = SD_LATENT_RGB): RgbImage {
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
      projection.factors.forEach((f, c) => {
        const v = latents[c * plane + p]!;
        sums[q * 3]! += v * f[0];
        sums[q * 3 + 1]! += v * f[1];
        sums[q * 3 + 2]! += v * f[2];
      });
    }
  }
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) {
    const v = sums[i]! / counts[Math.floor(i / 3)]! + projection.bias[i % 3]!;
    data[i] = Math.round(Math.min(1, Math.max(0, (v + 1) / 2)) * 255);
  }
  return { width: w, height: h, data };
}
