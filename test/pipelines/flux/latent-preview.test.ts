import { describe, expect, it } from 'vitest';
import { fluxLatentPreview } from '../../../src/pipelines/flux/latent-preview.js';

describe('FLUX latent previews', () => {
  it("projects each latent pixel's 16 channels to RGB with FLUX.1's factors and bias", () => {
    const latents = new Float32Array(16 * 1 * 2); // [16, 1, 2]
    latents[9 * 2] = 4; // channel 9 at (0, 0): 4 · (0.1008, 0.0755, −0.0421) + bias (−0.0329, −0.0718, −0.0851)
    const preview = fluxLatentPreview(latents, 1, 2);
    expect([preview.width, preview.height]).toEqual([2, 1]);
    const rgb = (v: number) => Math.round(((v + 1) / 2) * 255);
    expect(Array.from(preview.data.subarray(0, 3))).toEqual([rgb(0.4032 - 0.0329), rgb(0.302 - 0.0718), rgb(-0.1684 - 0.0851)]);
    // Zero latents show the bias alone.
    expect(Array.from(preview.data.subarray(3, 6))).toEqual([rgb(-0.0329), rgb(-0.0718), rgb(-0.0851)]);
  });

  it('averages large latents down to at most 64 pixels a side', () => {
    const preview = fluxLatentPreview(new Float32Array(16 * 128 * 96).fill(0.5), 128, 96);
    expect([preview.width, preview.height]).toEqual([48, 64]);
    expect(new Set(preview.data).size).toBe(3);
  });
});
