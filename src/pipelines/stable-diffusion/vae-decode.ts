import type * as ort from 'onnxruntime-node';
import { runBatched } from '../onnx/batched-run.js';
import { toUnitRgb } from '../decoded-image.js';
import { type Port, tensorFor } from '../onnx/tensor-io.js';

export const VAE_FACTOR = 8;

/** The VAE decoder session and what its graph declares, as Stable Diffusion's and SDXL's sessions both describe it. */
export interface VaeDecoderGraph {
  vaeDecoder: ort.InferenceSession;
  io: { latentSample: Port; image: string };
  /** The graph's fixed batch size, or null where the batch is free. */
  batch: { vaeDecoder: number | null };
}

/**
 * Decodes latents [n, 4, h, w] into n pictures, float32 [8h, 8w, 3] in [0, 1]. The latents are
 * divided by the VAE's scaling factor first (the UNet works on scaled latents). Images go
 * through the decoder one at a time unless its graph fixes another batch: the decoder's
 * activations dominate peak memory, and batching them gains little.
 */
export async function decodeLatents(
  sessions: VaeDecoderGraph,
  latents: Float32Array,
  count: number,
  latentHeight: number,
  latentWidth: number,
  scalingFactor: number,
): Promise<Float32Array[]> {
  const perImage = 4 * latentHeight * latentWidth;
  const scaled = latents.map((v) => v / scalingFactor);
  const port = sessions.io.latentSample;
  const decoded = await runBatched(
    sessions.vaeDecoder,
    count,
    sessions.batch.vaeDecoder ?? 1,
    (start, n) => ({ [port.name]: tensorFor(port, scaled.subarray(start * perImage, (start + n) * perImage), [n, 4, latentHeight, latentWidth]) }),
    sessions.io.image,
  );
  const [height, width] = [latentHeight * VAE_FACTOR, latentWidth * VAE_FACTOR];
  const perPicture = 3 * height * width;
  if (decoded.length !== count * perPicture) throw new Error(`the VAE decoder returned ${decoded.length} values for ${count} pictures of ${width}×${height}`);
  return Array.from({ length: count }, (_, i) => toUnitRgb(decoded.subarray(i * perPicture, (i + 1) * perPicture), height, width));
}
