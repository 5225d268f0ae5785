import crypto from 'node:crypto';
import sharp from 'sharp';
import type { Generation } from '../db/entities/generation.js';
import type { StoredImage } from '../jobs/attempt.js';
import { generationPrefix } from '../jobs/delete.js';
import type { GeneratedImage } from '../pipelines/pipeline.js';
import type { Storage } from '../storage/storage.js';
import { withPngText } from './png-text.js';

/** Where an attempt's images go: per generation and lease, so a retry never reuses a key. */
export const attemptPrefix = (generationId: string, lease: number) => `${generationPrefix(generationId)}/${lease}`;

/**
 * Encodes each image as PNG, with the prompt, parameters, model and seed as text chunks, and
 * stores it. The same pixels and parameters always give the same bytes.
 */
export async function saveImages(storage: Storage, g: Generation, lease: number, modelName: string, images: GeneratedImage[]): Promise<StoredImage[]> {
  return Promise.all(
    images.map(async (img, index) => {
      const encoded = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
        .png({ compressionLevel: 6, adaptiveFiltering: false })
        .toBuffer();
      const png = withPngText(encoded, {
        prompt: g.prompt,
        ...(g.negativePrompt ? { negative_prompt: g.negativePrompt } : {}),
        parameters: JSON.stringify({
          model: modelName,
          modelId: g.modelId,
          loraId: g.loraId,
          loraWeight: g.loraWeight,
          steps: g.steps,
          guidanceScale: g.guidanceScale,
          width: img.width,
          height: img.height,
          seed: img.seed,
        }),
        Software: 'Kiln',
      });
      const storageKey = `${attemptPrefix(g.id, lease)}/${index}.png`;
      await storage.put(storageKey, png, 'image/png');
      return {
        index,
        storageKey,
        width: img.width,
        height: img.height,
        bytes: png.length,
        sha256: crypto.createHash('sha256').update(png).digest('hex'),
        seed: img.seed,
        mimeType: 'image/png',
      };
    }),
  );
}
