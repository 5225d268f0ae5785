import sharp from 'sharp';
import type { DatasetItem } from '../dataset-folder.js';

/**
 * The dataset's images as the denoiser's targets: resized to cover a square of the training
 * resolution and centre-cropped (sharp's Lanczos 3), as RGB in [-1, 1], [pixels × 3].
 */
export async function loadTrainingImages(items: DatasetItem[], resolution: number): Promise<Float32Array[]> {
  return Promise.all(
    items.map(async (item) => {
      const rgb = await sharp(item.imagePath)
        .resize(resolution, resolution, { fit: 'cover', position: 'centre' })
        .removeAlpha()
        .toColourspace('srgb')
        .raw()
        .toBuffer();
      const out = new Float32Array(rgb.length);
      for (let i = 0; i < rgb.length; i++) out[i] = rgb[i]! / 127.5 - 1;
      return out;
    }),
  );
}
