import crypto from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ModelFile } from '../db/entities/model.js';
import { JobFailure } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { PARTIAL_SUFFIX } from './model-cache-layout.js';

/** The object's bytes were not the ones the model records. */
export class ChecksumMismatch extends JobFailure {
  constructor(key: string, file: ModelFile, got: string) {
    super(
      'MODEL_CORRUPT',
      `model file ${key} in storage does not match its record ` +
        `(expected ${file.sizeBytes} bytes with sha256 ${file.sha256}, got ${got}); the download was discarded`,
      true,
    );
  }
}

/**
 * Downloads storage object `key` to `target`: into a temporary name beside it, hashed while it
 * streams, flushed, and renamed into place only when size and sha256 match the record. Anything
 * else leaves no file behind.
 */
export async function downloadFile(storage: Storage, key: string, file: ModelFile, target: string, signal?: AbortSignal): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const temp = `${target}.${crypto.randomBytes(6).toString('hex')}${PARTIAL_SUFFIX}`;
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  try {
    const source = await storage.read(key).catch((err) => {
      throw new JobFailure('MODEL_FETCH_FAILED', `could not read model file ${key} from storage: ${(err as Error).message}`, true, { cause: err });
    });
    await pipeline(
      source,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          bytes += chunk.length;
          // Room was made for the recorded size: never write more than that.
          if (bytes > file.sizeBytes) throw new ChecksumMismatch(key, file, `more than ${file.sizeBytes} bytes`);
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(temp, { flags: 'wx', flush: true }),
      { signal },
    ).catch((err) => {
      if (err instanceof JobFailure || signal?.aborted) throw err;
      throw new JobFailure('MODEL_FETCH_FAILED', `could not download model file ${key}: ${(err as Error).message}`, true, { cause: err });
    });
    const sha256 = hash.digest('hex');
    if (bytes !== file.sizeBytes || sha256 !== file.sha256) throw new ChecksumMismatch(key, file, `${bytes} bytes with sha256 ${sha256}`);
    await fs.rename(temp, target);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
}

/** Removes the temporary files of downloads that never finished, anywhere under `dir`. */
export async function removePartials(dir: string): Promise<void> {
  const names = await fs
    .readdir(dir, { recursive: true })
    .catch((err) => ((err as NodeJS.ErrnoException).code === 'ENOENT' ? [] : Promise.reject(err)));
  for (const name of names) {
    if (name.endsWith(PARTIAL_SUFFIX)) await fs.rm(path.join(dir, name), { force: true });
  }
}
