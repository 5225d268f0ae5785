/**
 * Small training datasets in Kiln's canonical layout, drawn with sharp: distinct pictures
 * (solid colours, gradients, discs, stripes), each with a caption, and the manifest.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { buildBuiltinModel } from '../../src/pipelines/builtin/model-files.js';
import { writeDatasetManifest } from '../../src/trainers/dataset-folder.js';

type Rgb = [number, number, number];
/** Colour of the pixel at (u, v), both in [0, 1). */
type Painter = (u: number, v: number) => Rgb;

const mix = (a: Rgb, b: Rgb, t: number): Rgb => [0, 1, 2].map((i) => Math.round(a[i]! + (b[i]! - a[i]!) * t)) as Rgb;

export const PICTURES: { caption: string; paint: Painter }[] = [
  { caption: 'a red square', paint: () => [220, 30, 30] },
  { caption: 'a blue sky', paint: (_u, v) => mix([40, 90, 230], [150, 200, 255], v) },
  { caption: 'green fading to black', paint: (u) => mix([30, 200, 60], [0, 0, 0], u) },
  { caption: 'a white disc on black', paint: (u, v) => ((u - 0.5) ** 2 + (v - 0.5) ** 2 < 0.09 ? [245, 245, 245] : [10, 10, 10]) },
  { caption: 'yellow and purple stripes', paint: (_u, v) => (Math.floor(v * 4) % 2 ? [240, 220, 40] : [110, 40, 150]) },
  { caption: 'an orange sunset', paint: (_u, v) => mix([250, 150, 40], [120, 20, 60], v) },
  { caption: 'a grey wall', paint: () => [128, 128, 128] },
  { caption: 'a cyan pool', paint: (u, v) => ((u - 0.5) ** 2 + (v - 0.5) ** 2 < 0.16 ? [40, 220, 220] : [230, 230, 200]) },
  { caption: 'pink and brown halves', paint: (u) => (u < 0.5 ? [240, 140, 190] : [110, 70, 40]) },
  { caption: 'a dark night', paint: (u, v) => mix([10, 10, 40], [40, 30, 90], (u + v) / 2) },
];

export async function paint(painter: Painter, size: number): Promise<Buffer> {
  const raw = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) raw.set(painter((x + 0.5) / size, (y + 0.5) / size), (y * size + x) * 3);
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

/** Writes `count` of the pictures (with their captions) as `001.png`, `001.txt`, … and the manifest. */
export async function writeTrainingDataset(dir: string, count: number, size = 64): Promise<typeof PICTURES> {
  await fs.mkdir(dir, { recursive: true });
  const pictures = PICTURES.slice(0, count);
  for (const [i, p] of pictures.entries()) {
    const stem = String(i + 1).padStart(3, '0');
    await fs.writeFile(path.join(dir, `${stem}.png`), await paint(p.paint, size));
    await fs.writeFile(path.join(dir, `${stem}.txt`), p.caption);
  }
  await writeDatasetManifest(dir);
  return pictures;
}

/** The built-in model's files, as Kiln registers them, in `dir`. */
export async function writeBuiltinModel(dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  for (const f of buildBuiltinModel()) await fs.writeFile(path.join(dir, f.path), f.bytes);
  return dir;
}
