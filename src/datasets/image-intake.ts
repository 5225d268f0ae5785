import crypto from 'node:crypto';
import sharp, { type Metadata } from 'sharp';

/** An image as a dataset keeps it: oriented, 8-bit sRGB, re-encoded as PNG. */
export interface CanonicalImage {
  png: Buffer;
  width: number;
  height: number;
  /** Of the PNG: the same pixels always give the same bytes, so equal hashes are the same picture. */
  sha256: string;
}

/** Why an image is not taken; the message completes "<its name> …". */
export class ImageRefusal extends Error {}

const FORMATS = ['jpeg', 'png', 'webp'];

/**
 * Checks and re-encodes one image: JPEG, PNG or WebP by its content (not its name), one frame,
 * at most `maxPixels` by its header before anything is decoded (a small file can claim a huge
 * canvas), then decoded (a truncated or damaged file is refused), turned upright by its EXIF
 * orientation and written as PNG without the source's metadata.
 */
export async function canonicalImage(bytes: Buffer, maxPixels: number): Promise<CanonicalImage> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw new ImageRefusal('is not an image Kiln can read');
  }
  if (!meta.format || !FORMATS.includes(meta.format)) throw new ImageRefusal(`is ${meta.format ? `a ${meta.format.toUpperCase()} image` : 'not an image'}; only JPEG, PNG and WebP are taken`);
  if ((meta.pages ?? 1) > 1) throw new ImageRefusal('is animated; only still images are taken');
  const pixels = (meta.width ?? 0) * (meta.height ?? 0);
  if (!pixels) throw new ImageRefusal('has no pixels');
  if (pixels > maxPixels) {
    throw new ImageRefusal(`is ${meta.width}×${meta.height} (${+(pixels / 1e6).toFixed(2)} megapixels); at most ${+(maxPixels / 1e6).toFixed(2)} are taken`);
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
      .autoOrient()
      .toColourspace('srgb')
      .png({ compressionLevel: 6 })
      .toBuffer({ resolveWithObject: true });
    return { png: data, width: info.width, height: info.height, sha256: crypto.createHash('sha256').update(data).digest('hex') };
  } catch (err) {
    throw new ImageRefusal(`cannot be decoded (${(err as Error).message.split('\n')[0]})`);
  }
}
