import { describe, expect, it } from 'vitest';
import { latentPreview } from '../../../src/pipelines/latent-preview.js';
import { SDXL_LATENT_RGB } from '../../../src/pipelines/stable-diffusion-xl/pipeline.js';

describe('SDXL latent previews', () => {
  it("projects each latent pixel to RGB with SDXL's factors plus their bias", () => {
    const latents = new Float32Array(4 * 1 * 2); // [4, 1, 2]
    latents[0] = 1; // channel 0 at (0, 0): (0.3651, 0.4232, 0.4341) + (0.1084, −0.0175, −0.0011)
    latents[3 * 2 + 1] = -1; // channel 3 at (1, 0): −(−0.3165, −0.2492, −0.2188) + bias
    // At its own size (2 pixels wide), so that the projection is seen without resizing.
    const preview = latentPreview(latents, 1, 2, 2, SDXL_LATENT_RGB);
    expect(Array.from(preview.data)).toEqual([188, 179, 183, 182, 157, 155]);
    // A zero latent shows the bias alone, where SD's projection shows grey.
    expect(Array.from(latentPreview(new Float32Array(4), 1, 1, 1, SDXL_LATENT_RGB).data)).toEqual([141, 125, 127]);
    expect(Array.from(latentPreview(new Float32Array(4), 1, 1, 1).data)).toEqual([128, 128, 128]);
  });
});
