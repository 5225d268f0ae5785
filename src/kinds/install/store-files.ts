import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Storage } from '../../storage/storage.js';

/**
 * Puts a checked model's files (in `dir`) into storage under `prefix`, one after another and
 * never whole in memory: local storage on the same disk takes each by a rename (a 24 GB graph is
 * not copied), anything else streams it (S3 in multipart parts).
 */
export async function storeFiles(storage: Storage, dir: string, paths: string[], prefix: string, signal: AbortSignal, onFile: (index: number, file: string) => void): Promise<void> {
  for (const [i, file] of paths.entries()) {
    signal.throwIfAborted();
    onFile(i + 1, file);
    const from = path.join(dir, file);
    const key = `${prefix}/${file}`;
    const local = storage.localPath(key);
    if (local) {
      await fs.mkdir(path.dirname(local), { recursive: true });
      const moved = await fs.rename(from, local).then(
        () => true,
        (err: NodeJS.ErrnoException) => (err.code === 'EXDEV' ? false : Promise.reject(err)),
      );
      if (moved) continue;
    }
    await storage.put(key, createReadStream(from, { signal }));
  }
}
