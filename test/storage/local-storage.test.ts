import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage } from '../../src/storage/local.js';
import { StorageKeyError } from '../../src/storage/storage.js';
import { UrlSigner } from '../../src/storage/url-signer.js';

describe('local storage', () => {
  let root: string;
  let storage: LocalStorage;
  const signer = new UrlSigner('a-test-secret-of-enough-length', 3600);
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-storage-'));
    storage = new LocalStorage(root, signer);
  });
  afterAll(() => fs.rm(root, { recursive: true, force: true }));

  it('stores, reads, sizes and deletes objects, from bytes or a stream', async () => {
    await storage.put('a/b/c.txt', new TextEncoder().encode('hello'));
    await storage.put('a/b/d.txt', Readable.from(['str', 'eam']));
    expect(await text(await storage.read('a/b/c.txt'))).toBe('hello');
    expect(await text(await storage.read('a/b/d.txt'))).toBe('stream');
    expect(await storage.stat('a/b/c.txt')).toEqual({ size: 5 });
    expect(await storage.stat('a/b/missing')).toBeUndefined();
    await storage.delete('a/b/c.txt');
    expect(await storage.stat('a/b/c.txt')).toBeUndefined();
    await storage.deletePrefix('a');
    expect(await fs.readdir(root)).toEqual([]);
  });

  it('leaves no file behind when a write fails part-way', async () => {
    const failing = new Readable({
      read() {
        this.push('partial');
        this.destroy(new Error('disk on fire'));
      },
    });
    await expect(storage.put('x/broken.bin', failing)).rejects.toThrow('disk on fire');
    expect(await storage.stat('x/broken.bin')).toBeUndefined();
    expect(await fs.readdir(path.join(root, 'x')).catch(() => [])).toEqual([]);
  });

  it('refuses keys that could leave its folder', async () => {
    for (const key of ['../escape', 'a/../../b', '/abs', 'a//b', '', 'a/./b', '.hidden', 'a\\b']) {
      await expect(storage.put(key, new Uint8Array(1)), key).rejects.toBeInstanceOf(StorageKeyError);
    }
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
