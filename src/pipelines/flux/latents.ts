/**
 * FLUX's latent layout, as FluxPipeline has it. The VAE's latents are [n, 16, h, w] with
 * h = 2·⌊H/16⌋ and w = 2·⌊W/16⌋; the transformer sees them packed into 2×2 patches, one token
 * per patch: [n, (h/2)·(w/2), 64], token (i, j) holding channel c's patch at c·4 + 2·dy + dx
 * (_pack_latents: view(n, c, h/2, 2, w/2, 2), permute(0, 2, 4, 1, 3, 5)). Each token's position
 * is given to the transformer as the id (0, i, j); the text tokens' ids are all zero.
 */

export const LATENT_CHANNELS = 16;
/** Values per packed token: 16 channels of a 2×2 patch. */
export const PACKED_WIDTH = LATENT_CHANNELS * 4;
/** Pixels per latent; packing takes 2×2 latents, so image sides go in steps of 16. */
export const VAE_FACTOR = 8;
export const SIDE_STEP = VAE_FACTOR * 2;

/** Latent height and width for an image of `height` × `width`, as prepare_latents rounds them. */
export const latentSide = (pixels: number) => 2 * Math.floor(pixels / SIDE_STEP);

export function packLatents(latents: Float32Array, n: number, channels: number, h: number, w: number): Float32Array {
  const [h2, w2] = [h / 2, w / 2];
  const tokenWidth = channels * 4;
  const out = new Float32Array(latents.length);
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < channels; c++) {
      const plane = (b * channels + c) * h * w;
      for (let y = 0; y < h; y++) {
        const tokenRow = (b * h2 + (y >> 1)) * w2;
        for (let x = 0; x < w; x++) {
          out[(tokenRow + (x >> 1)) * tokenWidth + c * 4 + (y & 1) * 2 + (x & 1)] = latents[plane + y * w + x]!;
        }
      }
    }
  }
  return out;
}

export function unpackLatents(packed: Float32Array, n: number, channels: number, h: number, w: number): Float32Array {
  const [h2, w2] = [h / 2, w / 2];
  const tokenWidth = channels * 4;
  const out = new Float32Array(packed.length);
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < channels; c++) {
      const plane = (b * channels + c) * h * w;
      for (let y = 0; y < h; y++) {
        const tokenRow = (b * h2 + (y >> 1)) * w2;
        for (let x = 0; x < w; x++) {
          out[plane + y * w + x] = packed[(tokenRow + (x >> 1)) * tokenWidth + c * 4 + (y & 1) * 2 + (x & 1)]!;
        }
      }
    }
  }
  return out;
}

/** _prepare_latent_image_ids: [(h/2)·(w/2), 3] rows (0, i, j), row-major over the tokens. */
export function latentImageIds(h2: number, w2: number): Float32Array {
  const ids = new Float32Array(h2 * w2 * 3);
  for (let i = 0; i < h2; i++) {
    for (let j = 0; j < w2; j++) {
      ids[(i * w2 + j) * 3 + 1] = i;
      ids[(i * w2 + j) * 3 + 2] = j;
    }
  }
  return ids;
}
