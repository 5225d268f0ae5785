import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { JobFailure } from '../errors.js';
import { folderSha256 } from '../models/content-hash.js';

/**
 * Kiln's canonical dataset folder, what every trainer reads: images `001.png`, `002.png`, …
 * (already decoded, oriented and re-encoded by intake), each caption in the `.txt` of the same
 * name (UTF-8; absent means empty), and `manifest.json` listing every file with its size and
 * sha256. The dataset's hash is that of its sorted (sha256, path) list, as for model folders.
 */

export const DATASET_MANIFEST = 'manifest.json';
const ITEM_FILE = /^(\d{3,})\.(png|txt)$/;

const manifestSchema = z.object({
  version: z.literal(1),
  files: z.array(z.object({ path: z.string().regex(ITEM_FILE), sizeBytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
});
export type DatasetManifest = z.infer<typeof manifestSchema>;

export interface DatasetItem {
  /** `001`, `002`, …: the file names' stem. */
  id: string;
  imagePath: string;
  /** The caption as stored. */
  caption: string;
}

export interface DatasetFolder {
  dir: string;
  sha256: string;
  items: DatasetItem[];
}

const invalid = (problem: string) => new JobFailure('DATASET_INVALID', `the dataset folder ${problem}`, false);

/** Reads the folder and checks every file against its manifest (size and sha256) before anything trains on it. */
export async function readDatasetFolder(dir: string): Promise<DatasetFolder> {
  let manifest: DatasetManifest;
  try {
    manifest = manifestSchema.parse(JSON.parse(await fs.readFile(path.join(dir, DATASET_MANIFEST), 'utf8')));
  } catch (err) {
    throw invalid(`has no valid ${DATASET_MANIFEST}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const byPath = new Map(manifest.files.map((f) => [f.path, f]));
  if (byPath.size !== manifest.files.length) throw invalid(`lists a file twice in ${DATASET_MANIFEST}`);
  for (const f of manifest.files) {
    const bytes = await fs.readFile(path.join(dir, f.path)).catch(() => {
      throw invalid(`lacks ${f.path}, which its manifest lists`);
    });
    if (bytes.length !== f.sizeBytes || sha256(bytes) !== f.sha256) throw invalid(`holds a ${f.path} that is not the one its manifest lists`);
  }
  const items: DatasetItem[] = [];
  for (const f of [...manifest.files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const [, id, ext] = ITEM_FILE.exec(f.path)!;
    if (ext !== 'png') continue;
    const captionFile = `${id}.txt`;
    const caption = byPath.has(captionFile) ? new TextDecoder('utf-8', { fatal: true }).decode(await fs.readFile(path.join(dir, captionFile))).trim() : '';
    items.push({ id: id!, imagePath: path.join(dir, f.path), caption });
  }
  if (!items.length) throw invalid('holds no images');
  const orphan = manifest.files.find((f) => f.path.endsWith('.txt') && !byPath.has(f.path.replace(/\.txt$/, '.png')));
  if (orphan) throw invalid(`holds the caption ${orphan.path} without its image`);
  return { dir, sha256: folderSha256(manifest.files), items };
}

/** Writes `manifest.json` for the `NNN.png` and `NNN.txt` files in `dir`. */
export async function writeDatasetManifest(dir: string): Promise<DatasetManifest> {
  const names = (await fs.readdir(dir)).filter((n) => ITEM_FILE.test(n)).sort();
  const files = await Promise.all(
    names.map(async (n) => {
      const bytes = await fs.readFile(path.join(dir, n));
      return { path: n, sizeBytes: bytes.length, sha256: sha256(bytes) };
    }),
  );
  const manifest: DatasetManifest = { version: 1, files };
  await fs.writeFile(path.join(dir, DATASET_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** The caption as trained: the trigger word first, unless the caption has it already as a word (any case). */
export function captionWithTrigger(caption: string, triggerWord: string): string {
  const trigger = triggerWord.trim();
  if (!trigger) return caption;
  const escaped = trigger.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (new RegExp(`(^|[^\\p{L}\\p{N}_])${escaped}($|[^\\p{L}\\p{N}_])`, 'iu').test(caption)) return caption;
  return caption ? `${trigger}, ${caption}` : trigger;
}

function sha256(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}
