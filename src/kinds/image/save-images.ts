import crypto from 'node:crypto';
import sharp from 'sharp';
import type { NewOutput } from '../../jobs/kind.js';
import { withPngText } from '../../media/png-text.js';
import type { GeneratedImage } from '../../pipelines/pipeline.js';
import type { Storage } from '../../storage/storage.js';
import type { ImageParams } from './params.js';

/**
 * Encodes each image as PNG, with the prompt, every parameter that shapes it, the model and the
 * image's own seed as text chunks, and stores it under the attempt's folder. The same pixels
 * and parameters always give the same bytes.
 */
export async function saveImages(storage: Storage, prefix: string, params: ImageParams, modelName: string, images: GeneratedImage[]): Promise<NewOutput[]> {
  return Promise.all(
    images.map(async (img, index) => {
      const encoded = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
        .png({ compressionLevel: 6, adaptiveFiltering: false })
        .toBuffer();
      const { prompt, negativePrompt, previews: _, ...rest } = params;
      const png = withPngText(encoded, {
        prompt,
        ...(negativePrompt ? { negative_prompt: negativePrompt } : {}),
        parameters: JSON.stringify({ model: modelName, ...rest, width: img.width, height: img.height, seed: img.seed }),
        Software: 'Kiln',
      });
      const storageKey = `${prefix}/${index}.png`;
      await storage.put(storageKey, png, 'image/png');
      return {
        index,
        mediaType: 'image' as const,
        storageKey,
        mimeType: 'image/png',
        bytes: png.length,
        sha256: crypto.createHash('sha256').update(png).digest('hex'),
        metadata: { width: img.width, height: img.height, seed: img.seed },
      };
    }),
  );
}
