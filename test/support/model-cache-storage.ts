import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ModelFile } from '../../src/db/entities/model.js';
import { folderSha256 } from '../../src/models/content-hash.js';
import type { CachedModel } from '../../src/models/model-cache.js';
import { LocalStorage } from '../../src/storage/local.js';
import type { Storage } from '../../src/storage/storage.js';
import { UrlSigner } from '../../src/storage/url-signer.js';

export interface RemoteStorageOptions {
  /** Appends `<pid> <key>` per read to this file, for reads made by several processes. */
  readsLog?: string;
  /** Each read sends half its first chunk, calls `onHeld`, and sends the rest once `gate` resolves. */
  gate?: Promise<void>;
  onHeld?: (key: string) => void;
}

/**
 * Local storage that behaves like a bucket on another machine: no local paths, so the model
 * cache must download, and every read is recorded.
 */
export class RemoteLikeStorage implements Storage {
  readonly kind = 's3' as const;
  readonly reads: string[] = [];
  private readonly disk: LocalStorage;

  constructor(
    root: string,
    private readonly options: RemoteStorageOptions = {},
  ) {
    this.disk = new LocalStorage(root, new UrlSigner('model-cache-test-secret-of-enough-length', 3600));
  }

  localPath(): string | undefined {
    return undefined;
  }

  async read(key: string): Promise<Readable> {
    const source = await this.disk.read(key);
    this.reads.push(key);
    if (this.options.readsLog) await fs.appendFile(this.options.readsLog, `${process.pid} ${key}\n`);
    const { gate, onHeld } = this.options;
    if (!gate) return source;
    return Readable.from(
      (async function* () {
        let first = true;
        for await (const chunk of source as AsyncIterable<Buffer>) {
          if (first) {
            first = false;
            const half = chunk.subarray(0, chunk.length >> 1);
            yield half;
            onHeld?.(key);
            await gate;
            yield chunk.subarray(half.length);
          } else {
            yield chunk;
          }
        }
      })(),
    );
  }

  put: Storage['put'] = (key, body) => this.disk.put(key, body);
  stat: Storage['stat'] = (key) => this.disk.stat(key);
  delete: Storage['delete'] = (key) => this.disk.delete(key);
  deletePrefix: Storage['deletePrefix'] = (prefix) => this.disk.deletePrefix(prefix);
  signedUrl: Storage['signedUrl'] = (key, options) => this.disk.signedUrl(key, options);
  uploadUrl: Storage['uploadUrl'] = (key, options) => this.disk.uploadUrl(key, options);
  ping: Storage['ping'] = () => this.disk.ping();
  close: Storage['close'] = () => this.disk.close();
}

/** The reads recorded in a shared reads log: one `{ pid, key }` per line. */
export async function readsIn(readsLog: string): Promise<{ pid: number; key: string }[]> {
  const text = await fs.readFile(readsLog, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [pid, key] = line.split(' ');
      return { pid: Number(pid), key: key! };
    });
}

/**
 * Stores a model of random files of the given sizes under `models/<name>` and returns it as the
 * cache sees it. `corrupt` names files whose stored bytes differ from the recorded ones.
 */
export async function putModel(
  storage: Storage,
  name: string,
  sizes: Record<string, number>,
  corrupt: string[] = [],
): Promise<CachedModel & { bytes: Map<string, Buffer>; sizeBytes: number }> {
  const storageKey = `models/${name}`;
  const bytes = new Map<string, Buffer>();
  const files: ModelFile[] = [];
  for (const [filePath, size] of Object.entries(sizes)) {
    const data = crypto.randomBytes(size);
    bytes.set(filePath, data);
    files.push({ path: filePath, sizeBytes: size, sha256: crypto.createHash('sha256').update(data).digest('hex') });
    const stored = Buffer.from(data);
    if (corrupt.includes(filePath)) stored[0] ^= 0xff;
    await storage.put(`${storageKey}/${filePath}`, stored);
  }
  return { storageKey, files, sha256: folderSha256(files), bytes, sizeBytes: files.reduce((n, f) => n + f.sizeBytes, 0) };
}

/** Sets when the cache last used a model (backdating instead of sleeping). */
export async function setLastUse(cacheDir: string, sha256: string, at: Date): Promise<void> {
  await fs.utimes(path.join(cacheDir, `${sha256}.json`), at, at);
}

/** The cache folder's contents, relative paths, sorted (for "nothing left behind" checks). */
export async function listTree(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}
