import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../config.js';
import { JobFailure } from '../../errors.js';
import { formatBytes as fmt } from '../../models/model-cache-space.js';
import type { Storage } from '../../storage/storage.js';

export interface Room {
  /** The install's work folder. */
  dir: string;
  /** Bytes still to be written there (what earlier attempts left is counted out). */
  incomingBytes: number;
  /** The whole model's size. */
  modelBytes: number;
  config: Config;
  storage: Storage;
}

/**
 * Refuses an install before it starts when the model cannot be kept: larger than a model may be
 * (KILN_MAX_UPLOAD_MB), larger than the workers' model cache when workers fetch models from S3
 * (KILN_MODEL_CACHE_MAX_GB), or more than the work folder's disk (and local storage's, on
 * another disk) can take while keeping KILN_MIN_FREE_DISK_GB free.
 */
export async function checkRoom(r: Room): Promise<void> {
  const { uploads, models } = r.config;
  if (r.modelBytes > uploads.maxUploadBytes) {
    throw new JobFailure('TOO_LARGE', `the model is ${fmt(r.modelBytes)}, more than the ${fmt(uploads.maxUploadBytes)} a model may be (KILN_MAX_UPLOAD_MB)`, false);
  }
  if (r.storage.kind === 's3' && r.modelBytes > models.cacheMaxBytes) {
    throw new JobFailure('DISK_FULL', `the model is ${fmt(r.modelBytes)}, more than the workers' model cache holds (KILN_MODEL_CACHE_MAX_GB, ${fmt(models.cacheMaxBytes)})`, false);
  }
  await fs.mkdir(r.dir, { recursive: true });
  const work = await disk(r.dir);
  const storageDir = r.storage.localPath('models');
  const store = storageDir ? await disk(await existingAncestor(storageDir)) : undefined;
  const sameDisk = store?.dev === work.dev;
  // Local storage on the same disk takes the files by renaming them: they count once.
  const needs = [{ at: r.dir, free: work.free, bytes: r.incomingBytes }, ...(store && !sameDisk ? [{ at: storageDir!, free: store.free, bytes: r.modelBytes }] : [])];
  for (const n of needs) {
    if (n.free - n.bytes < models.minFreeDiskBytes) {
      throw new JobFailure(
        'DISK_FULL',
        `the install needs ${fmt(n.bytes)} on the disk of ${n.at}, which has ${fmt(n.free)} free and keeps ${fmt(models.minFreeDiskBytes)} free (KILN_MIN_FREE_DISK_GB)`,
        false,
      );
    }
  }
}

async function disk(dir: string): Promise<{ free: number; dev: number }> {
  const [s, st] = await Promise.all([fs.statfs(dir), fs.stat(dir)]);
  return { free: s.bavail * s.bsize, dev: st.dev };
}

async function existingAncestor(dir: string): Promise<string> {
  for (let d = dir; ; d = path.dirname(d)) {
    if (await fs.stat(d).then(() => true, () => false)) return d;
    if (path.dirname(d) === d) return d;
  }
}
