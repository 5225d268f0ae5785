import { runBatched } from '../onnx/batched-run.js';
import { toUnitRgb } from '../decoded-image.js';
import { tensorFor } from '../onnx/tensor-io.js';
import { LATENT_CHANNELS, VAE_FACTOR } from './latents.js';
import type { FluxSessions } from './sessions.js';

/**
 * Unpacked latents [n, 16, h, w] to n pictures, float32 [8h, 8w, 3] in [0, 1]: as FluxPipeline,
 * latents / scaling_factor + shift_factor into the decoder, then x / 2 + 0.5 clamped. One image
 * per decoder run unless the graph fixes another batch (the decoder's activations are the
 * largest of the pipeline at 1024²).
 */
export async function decodeFluxLatents(
  sessions: FluxSessions,
  unpacked: Float32Array,
  count: number,
  latentHeight: number,
  latentWidth: number,
  factors: { scalingFactor: number; shiftFactor: number },
): Promise<Float32Array[]> {
  const { vae } = sessions;
  const perImage = LATENT_CHANNELS * latentHeight * latentWidth;
  const scaled = new Float32Array(unpacked.length);
  for (let i = 0; i < scaled.length; i++) scaled[i] = Math.fround(unpacked[i]! / factors.scalingFactor) + factors.shiftFactor;
  const decoded = await runBatched(
    vae.session,
    count,
    vae.batch ?? 1,
    (start, n) => ({ [vae.latent.name]: tensorFor(vae.latent, scaled.subarray(start * perImage, (start + n) * perImage), [n, LATENT_CHANNELS, latentHeight, latentWidth]) }),
    vae.image,
  );
  const [height, width] = [latentHeight * VAE_FACTOR, latentWidth * VAE_FACTOR];
  const perPicture = 3 * height * width;
  if (decoded.length !== count * perPicture) throw new Error(`the VAE decoder returned ${decoded.length} values for ${count} pictures of ${width}×${height}`);
  return Array.from({ length: count }, (_, i) => toUnitRgb(decoded.subarray(i * perPicture, (i + 1) * perPicture), height, width));
}
