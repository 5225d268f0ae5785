import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage } from '../../src/storage/local.js';
import { UrlSigner } from '../../src/storage/url-signer.js';
import { failingStream, storageContract } from './storage-contract.js';

describe('local storage', () => {
  let root: string;
  let storage: LocalStorage;
  const signer = new UrlSigner('a-test-secret-of-enough-length', 3600);
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-storage-'));
    storage = new LocalStorage(root, signer);
  });
  afterAll(() => fs.rm(root, { recursive: true, force: true }));

  storageContract(() => storage);

  it('keeps objects as files under its folder and removes the folders it emptied', async () => {
    await storage.put('a/b/c.txt', new TextEncoder().encode('hello'));
    expect(storage.localPath('a/b/c.txt')).toBe(path.join(root, 'a', 'b', 'c.txt'));
    expect(await fs.readFile(path.join(root, 'a', 'b', 'c.txt'), 'utf8')).toBe('hello');
    await storage.delete('a/b/c.txt');
    expect(await fs.readdir(root)).toEqual([]);
  });

  it('leaves no temporary file behind when a write fails part-way', async () => {
    await expect(storage.put('x/broken.bin', failingStream(100_000))).rejects.toThrow('disk on fire');
    expect(await fs.readdir(path.join(root, 'x')).catch(() => [])).toEqual([]);
  });

  it('signs URLs that verify until they expire, and not once tampered with', async () => {
    const url = new URL(await storage.signedUrl('generations/g/1/0.png', { baseUrl: 'http://kiln.test' }));
    expect(url.pathname).toBe('/files/generations/g/1/0.png');
    const params = { expires: Number(url.searchParams.get('expires')), sig: url.searchParams.get('sig')! };
    expect(signer.verify('generations/g/1/0.png', '', params)).toBe(true);
    expect(signer.verify('generations/g/1/1.png', '', params)).toBe(false);
    expect(signer.verify('generations/g/1/0.png', '', { ...params, expires: params.expires + 1 })).toBe(false);
    expect(signer.verify('generations/g/1/0.png', 'download:x.png', params)).toBe(false);
    expect(signer.verify('generations/g/1/0.png', 'upload:10', params)).toBe(false);
    expect(signer.verify('generations/g/1/0.png', '', params, (params.expires + 1) * 1000)).toBe(false);
    expect(new UrlSigner('another-secret-of-enough-length', 3600).verify('generations/g/1/0.png', '', params)).toBe(false);
  });

  it('gives the same URL when asked twice in a row, so caches can keep the file', () => {
    const now = Date.now();
    expect(signer.sign('k', '', 3600, now)).toEqual(signer.sign('k', '', 3600, now + 1000));
    expect(signer.sign('k', '', 3600, now).expires * 1000).toBeGreaterThanOrEqual(now + 3600 * 1000);
  });
});
