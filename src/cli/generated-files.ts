import fs from 'node:fs/promises';
import sharp from 'sharp';
import type { GenerateResult } from '../pipelines/pipeline.js';

/**
 * What the image generate commands write: each image as a PNG at `out` (numbered when there are
 * several), with --raw the pipeline's float pixels before quantisation (for comparison with a
 * reference library), and the timings since `started`.
 */
export async function writeGenerated(result: GenerateResult & { pixels: Float32Array[] }, out: string, rawFile: string | undefined, started: number) {
  for (const [i, image] of result.images.entries()) {
    const file = result.images.length === 1 ? out : out.replace(/(\.png)?$/i, `-${i}.png`);
    await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toFile(file);
    process.stdout.write(`${file} (seed ${image.seed})\n`);
  }
  if (rawFile) {
    const raw = new Float32Array(result.pixels.reduce((n, p) => n + p.length, 0));
    result.pixels.forEach((p, i) => raw.set(p, i * p.length));
    await fs.writeFile(rawFile, new Uint8Array(raw.buffer));
    process.stdout.write(`${rawFile} (float32 [${result.pixels.length}, ${result.images[0]!.height}, ${result.images[0]!.width}, 3])\n`);
  }
  process.stdout.write(`encode ${result.encodeMs.toFixed(0)} ms, generate ${result.generateMs.toFixed(0)} ms, total ${(performance.now() - started).toFixed(0)} ms\n`);
}
