import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { JobFailure } from '../errors.js';
import { datasetKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import { DATASET_MANIFEST } from '../trainers/dataset-folder.js';

const ITEM_FILE = /^\d{3,}\.(png|txt)$/;

/**
 * A ready dataset's canonical folder on this machine, for a trainer to read: the store's own
 * folder with local storage, else a copy made in `dir` from its manifest. The trainer checks
 * every file against the manifest before it trains.
 */
export async function localDataset(storage: Storage, datasetId: string, dir: string): Promise<string> {
  const prefix = datasetKey(datasetId);
  const local = storage.localPath(prefix);
  if (local !== undefined) return local;
  try {
    await fs.mkdir(dir, { recursive: true });
    await pipeline(await storage.read(`${prefix}/${DATASET_MANIFEST}`), createWriteStream(path.join(dir, DATASET_MANIFEST)));
    const manifest = JSON.parse(await fs.readFile(path.join(dir, DATASET_MANIFEST), 'utf8')) as { files?: { path?: unknown }[] };
    for (const f of manifest.files ?? []) {
      if (typeof f.path !== 'string' || !ITEM_FILE.test(f.path)) throw new Error(`its manifest lists ${JSON.stringify(f.path)}`);
      await pipeline(await storage.read(`${prefix}/${f.path}`), createWriteStream(path.join(dir, f.path)));
    }
    return dir;
  } catch (err) {
    throw new JobFailure('STORAGE_ERROR', `could not fetch dataset ${datasetId}: ${(err as Error).message}`, true, { cause: err });
  }
}
