import type { RgbImage } from './pipeline.js';

/**
 * A preview of latents without the VAE: each latent pixel's channels projected linearly to RGB
 * (plus a bias) with factors fitted to a family's latent space, the "latent to RGB"
 * approximation ComfyUI and A1111 use, then resized to `size` pixels on the longer side
 * (averaged down from large latents, bilinearly up from small ones: a 128² image has 16²
 * latents) and mapped from [−1, 1] to 8 bits.
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
export function latentPreview(latents: Float32Array, height: number, width: number, size = 64, projection: LatentRgbProjection = SD_LATENT_RGB): RgbImage {
  const rgb = project(latents, height * width, projection);
  const scale = size / Math.max(height, width);
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const resized = scale < 1 ? averageDown(rgb, width, height, w, h) : bilinearUp(rgb, width, height, w, h);
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.round(Math.min(1, Math.max(0, (resized[i]! + 1) / 2)) * 255);
  return { width: w, height: h, data };
}

/** Interleaved RGB, one triple per latent pixel, in about [-1, 1]. */
function project(latents: Float32Array, plane: number, { factors, bias }: LatentRgbProjection): Float32Array {
  const rgb = new Float32Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    rgb[p * 3] = bias[0];
    rgb[p * 3 + 1] = bias[1];
    rgb[p * 3 + 2] = bias[2];
    factors.forEach((f, c) => {
      const v = latents[c * plane + p]!;
      rgb[p * 3]! += v * f[0];
      rgb[p * 3 + 1]! += v * f[1];
      rgb[p * 3 + 2]! += v * f[2];
    });
  }
  return rgb;
}

/** Each output pixel is the mean of the source pixels its footprint covers. */
function averageDown(src: Float32Array, sw: number, sh: number, w: number, h: number): Float32Array {
  const out = new Float32Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor((y * sh) / h);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * sh) / h));
    for (let x = 0; x < w; x++) {
      const x0 = Math.floor((x * sw) / w);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * sw) / w));
      const n = (y1 - y0) * (x1 - x0);
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let sy = y0; sy < y1; sy++) for (let sx = x0; sx < x1; sx++) sum += src[(sy * sw + sx) * 3 + c]!;
        out[(y * w + x) * 3 + c] = sum / n;
      }
    }
  }
  return out;
}

/** Bilinear with pixel centres aligned (as image resizers do), edges clamped. */
function bilinearUp(src: Float32Array, sw: number, sh: number, w: number, h: number): Float32Array {
  const out = new Float32Array(w * h * 3);
  const clamp = (v: number, max: number) => Math.min(max, Math.max(0, v));
  for (let y = 0; y < h; y++) {
    const fy = clamp(((y + 0.5) * sh) / h - 0.5, sh - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(sh - 1, y0 + 1);
    const ty = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = clamp(((x + 0.5) * sw) / w - 0.5, sw - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(sw - 1, x0 + 1);
      const tx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const at = (sx: number, sy: number) => src[(sy * sw + sx) * 3 + c]!;
        const top = at(x0, y0) * (1 - tx) + at(x1, y0) * tx;
        const bottom = at(x0, y1) * (1 - tx) + at(x1, y1) * tx;
        out[(y * w + x) * 3 + c] = top * (1 - ty) + bottom * ty;
      }
    }
  }
  return out;
}
