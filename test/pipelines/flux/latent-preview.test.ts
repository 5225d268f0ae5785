import { describe, expect, it } from 'vitest';
import { FLUX_LATENT_RGB } from '../../../src/pipelines/flux/latent-preview.js';
import { latentPreview } from '../../../src/pipelines/latent-preview.js';

describe('FLUX latent previews', () => {
  const rgb = (v: number) => Math.round(((v + 1) / 2) * 255);

  it("projects each latent pixel's 16 channels to RGB with FLUX.1's factors and bias", () => {
    const latents = new Float32Array(16 * 2 * 2); // [16, 2, 2]
    latents.fill(4, 9 * 4, 10 * 4); // channel 9 everywhere: 4 · (0.1008, 0.0755, −0.0421) + bias (−0.0329, −0.0718, −0.0851)
    const preview = latentPreview(latents, 2, 2, 64, FLUX_LATENT_RGB);
    expect([preview.width, preview.height]).toEqual([64, 64]);
    expect(Array.from(preview.data.subarray(0, 3))).toEqual([rgb(0.4032 - 0.0329), rgb(0.302 - 0.0718), rgb(-0.1684 - 0.0851)]);
    // Zero latents show the bias alone.
    expect(Array.from(latentPreview(new Float32Array(16 * 4), 2, 2, 64, FLUX_LATENT_RGB).data.subarray(0, 3))).toEqual([rgb(-0.0329), rgb(-0.0718), rgb(-0.0851)]);
  });

  it('averages large latents down to 64 pixels on the longer side', () => {
    const preview = latentPreview(new Float32Array(16 * 128 * 96).fill(0.5), 128, 96, 64, FLUX_LATENT_RGB);
    expect([preview.width, preview.height]).toEqual([48, 64]);
    expect(new Set(preview.data).size).toBe(3);
  });
});
