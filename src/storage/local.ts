import crypto from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertKey, type Storage, type UploadTarget, type UrlOptions } from './storage.js';
import { downloadScope, type UrlSigner, uploadScope } from './url-signer.js';

/** Files under one folder; URLs are HMAC-signed links to the API's `/files/` route. */
export class LocalStorage implements Storage {
  readonly kind = 'local' as const;

  constructor(
    readonly root: string,
    private readonly signer: UrlSigner,
  ) {}

  private file(key: string) {
    return path.join(this.root, assertKey(key));
  }

  async put(key: string, body: Uint8Array | Readable): Promise<void> {
    const target = this.file(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    // Written beside the target and renamed into place: a reader sees all of it or nothing.
    const temp = `${target}.${crypto.randomBytes(6).toString('hex')}.partial`;
    try {
      await pipeline(body instanceof Readable ? body : Readable.from([body]), createWriteStream(temp));
      await fs.rename(temp, target);
    } catch (err) {
      await fs.rm(temp, { force: true });
      throw err;
    }
  }

  async read(key: string): Promise<Readable> {
    const file = this.file(key);
    await fs.access(file);
    return createReadStream(file);
  }

  async stat(key: string) {
    const s = await fs.stat(this.file(key)).catch(() => undefined);
    return s?.isFile() ? { size: s.size } : undefined;
  }

  async delete(key: string) {
    await fs.rm(this.file(key), { force: true });
    await this.pruneEmptyParents(path.dirname(this.file(key)));
  }

  async deletePrefix(prefix: string) {
    const dir = this.file(prefix.replace(/\/+$/, ''));
    await fs.rm(dir, { recursive: true, force: true });
    await this.pruneEmptyParents(path.dirname(dir));
  }

  async signedUrl(key: string, { baseUrl, downloadAs }: UrlOptions) {
    const { expires, sig } = this.signer.sign(assertKey(key), downloadScope(downloadAs));
    const query = new URLSearchParams({ expires: String(expires), sig, ...(downloadAs ? { download: downloadAs } : {}) });
    return `${baseUrl}/files/${encodeKey(key)}?${query}`;
  }

  async uploadUrl(key: string, { baseUrl, sizeBytes, ttlSeconds }: { baseUrl: string; sizeBytes: number; ttlSeconds: number }): Promise<UploadTarget> {
    const { expires, sig } = this.signer.sign(assertKey(key), uploadScope(sizeBytes), ttlSeconds);
    const query = new URLSearchParams({ expires: String(expires), size: String(sizeBytes), sig });
    return {
      url: `${baseUrl}/uploads/${encodeKey(key)}?${query}`,
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(sizeBytes) },
      expiresAt: new Date(expires * 1000),
    };
  }

  localPath(key: string) {
    return this.file(key);
  }

  async ping() {
    await fs.mkdir(this.root, { recursive: true });
    await fs.access(this.root, fs.constants.W_OK);
  }

  close() {}

  private async pruneEmptyParents(dir: string) {
    while (dir.startsWith(this.root + path.sep)) {
      const removed = await fs.rmdir(dir).then(
        () => true,
        () => false,
      );
      if (!removed) return;
      dir = path.dirname(dir);
    }
  }
}

const encodeKey = (key: string) => key.split('/').map(encodeURIComponent).join('/');
