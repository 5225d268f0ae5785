import { describe, expect, it } from 'vitest';
import { latentPreview } from '../../src/pipelines/latent-preview.js';

const pixel = (preview: { width: number; data: Uint8Array }, x: number, y: number) =>
  Array.from(preview.data.subarray((y * preview.width + x) * 3, (y * preview.width + x) * 3 + 3));

describe('latent previews', () => {
  it('projects each latent pixel to RGB with the SD latent factors', () => {
    const latents = new Float32Array(4 * 2 * 3); // [4, 2, 3]
    latents[0] = 1; // channel 0 at (0, 0): (0.3512, 0.2297, 0.3227)
    latents[3 * 6 + 5] = -1; // channel 3 at (1, 2): −(−0.2120, −0.2616, −0.7177)
    const preview = latentPreview(latents, 2, 3, 3);
    expect([preview.width, preview.height]).toEqual([3, 2]);
    expect(pixel(preview, 0, 0)).toEqual([172, 157, 169]);
    expect(pixel(preview, 1, 0)).toEqual([128, 128, 128]);
    expect(pixel(preview, 2, 1)).toEqual([155, 161, 219]);
  });

  it('averages large latents down to 64 pixels on the longer side', () => {
    const preview = latentPreview(new Float32Array(4 * 128 * 96).fill(0.5), 128, 96);
    expect([preview.width, preview.height]).toEqual([48, 64]);
    expect(preview.data.length).toBe(48 * 64 * 3);
    expect(new Set(preview.data).size).toBe(3);
  });

  it('scales the 16² latents of a 128² image up to 64², smoothly, and keeps the aspect of others', () => {
    // Channel 0 is 1 on the left half, 0 on the right: a hard edge in the latents.
    const latents = new Float32Array(4 * 16 * 16);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 8; x++) latents[y * 16 + x] = 1;
    const preview = latentPreview(latents, 16, 16);
    expect([preview.width, preview.height]).toEqual([64, 64]);
    expect(pixel(preview, 0, 10)).toEqual([172, 157, 169]);
    expect(pixel(preview, 63, 10)).toEqual([128, 128, 128]);
    // Across the edge the red channel steps down through values between the two sides.
    const reds = Array.from({ length: 64 }, (_, x) => pixel(preview, x, 10)[0]!);
    expect(reds.filter((r) => r > 128 && r < 172).length).toBeGreaterThanOrEqual(2);
    expect(reds.every((r, x) => x === 0 || r <= reds[x - 1]!)).toBe(true);

    const wide = latentPreview(new Float32Array(4 * 8 * 16), 8, 16);
    expect([wide.width, wide.height]).toEqual([64, 32]);
  });
});
