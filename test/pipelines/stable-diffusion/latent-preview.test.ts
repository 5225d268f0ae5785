import { describe, expect, it } from 'vitest';
import { latentPreview } from '../../../src/pipelines/stable-diffusion/latent-preview.js';

describe('latent previews', () => {
  it('projects each latent pixel to RGB with the SD latent factors', () => {
    const latents = new Float32Array(4 * 2 * 3); // [4, 2, 3]
    latents[0] = 1; // channel 0 at (0, 0): (0.3512, 0.2297, 0.3227)
    latents[3 * 6 + 5] = -1; // channel 3 at (1, 2): −(−0.2120, −0.2616, −0.7177)
    const preview = latentPreview(latents, 2, 3);
    expect([preview.width, preview.height]).toEqual([3, 2]);
    const px = (x: number, y: number) => Array.from(preview.data.subarray((y * 3 + x) * 3, (y * 3 + x) * 3 + 3));
    expect(px(0, 0)).toEqual([172, 157, 169]);
    expect(px(1, 0)).toEqual([128, 128, 128]);
    expect(px(2, 1)).toEqual([155, 161, 219]);
  });

  it('averages large latents down to at most 64 pixels a side', () => {
    const preview = latentPreview(new Float32Array(4 * 128 * 96).fill(0.5), 128, 96);
    expect([preview.width, preview.height]).toEqual([48, 64]);
    expect(preview.data.length).toBe(48 * 64 * 3);
    expect(new Set(preview.data).size).toBe(3);
  });
});
