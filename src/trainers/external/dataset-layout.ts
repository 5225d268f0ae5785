import fs from 'node:fs/promises';
import path from 'node:path';
import type { DatasetFolder } from '../dataset-folder.js';

/**
 * The dataset as both tools read it: `NNN.png` with its caption (as trained, trigger word
 * included) beside it in `NNN.txt`. Images are hard-linked from the dataset folder where the
 * file system allows, else copied; what a tool cached there on an earlier attempt stays.
 */
export async function layOutDataset(dataset: DatasetFolder, captions: string[], dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  for (const [i, item] of dataset.items.entries()) {
    const image = path.join(dir, `${item.id}.png`);
    if (!(await fs.stat(image).catch(() => null))) await fs.link(item.imagePath, image).catch(() => fs.copyFile(item.imagePath, image));
    await fs.writeFile(path.join(dir, `${item.id}.txt`), captions[i]!);
  }
}

/** A name safe in file names and in ai-toolkit's globs: letters, digits, `_` and `-`. */
export function fileSafeName(name: string, fallback: string): string {
  const safe = name.replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 64);
  return safe || fallback;
}
