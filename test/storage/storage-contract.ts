/**
 * What every Storage driver promises, as cases that each driver's test file runs against a
 * real store (a folder, an S3-compatible server).
 */
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer, text } from 'node:stream/consumers';
import { expect, it } from 'vitest';
import { type Storage, StorageKeyError } from '../../src/storage/storage.js';

/** A stream that sends `bytes` bytes of `chunk`-sized pieces, then fails. */
export function failingStream(bytes: number, chunk = 64 * 1024) {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) {
        this.destroy(new Error('disk on fire'));
        return;
      }
      const size = Math.min(chunk, bytes - sent);
      sent += size;
      this.push(Buffer.alloc(size, 7));
    },
  });
}

/** Defines the shared cases; `storage` returns the driver once the suite's setup has made it. */
export function storageContract(storage: () => Storage) {
  const encode = (s: string) => new TextEncoder().encode(s);

  it('stores, reads, sizes and deletes objects, from bytes or a stream', async () => {
    const s = storage();
    await s.put('a/b/c.txt', encode('hello'));
    await s.put('a/b/d.txt', Readable.from(['str', 'eam']));
    expect(await text(await s.read('a/b/c.txt'))).toBe('hello');
    expect(await text(await s.read('a/b/d.txt'))).toBe('stream');
    expect(await s.stat('a/b/c.txt')).toEqual({ size: 5 });
    expect(await s.stat('a/b/missing')).toBeUndefined();
    await s.delete('a/b/c.txt');
    expect(await s.stat('a/b/c.txt')).toBeUndefined();
    await s.delete('a/b/c.txt');
    await s.deletePrefix('a');
    expect(await s.stat('a/b/d.txt')).toBeUndefined();
  });

  it('keeps binary content byte for byte, and an overwrite replaces it whole', async () => {
    const s = storage();
    const bytes = crypto.randomBytes(1024 * 1024 + 17);
    await s.put('bin/random.bin', Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]));
    expect((await buffer(await s.read('bin/random.bin'))).equals(bytes)).toBe(true);
    await s.put('bin/random.bin', encode('short'));
    expect(await text(await s.read('bin/random.bin'))).toBe('short');
    expect(await s.stat('bin/random.bin')).toEqual({ size: 5 });
    await s.deletePrefix('bin');
  });

  it('refuses to read an object that is not there', async () => {
    await expect(storage().read('nowhere/at-all.txt')).rejects.toThrow();
  });

  it('deletes everything under a prefix and nothing beside it', async () => {
    const s = storage();
    for (const key of ['p/1.txt', 'p/q/2.txt', 'p/q/r/3.txt', 'pq.txt', 'pp/4.txt']) await s.put(key, encode(key));
    await s.deletePrefix('p/');
    for (const key of ['p/1.txt', 'p/q/2.txt', 'p/q/r/3.txt']) expect(await s.stat(key), key).toBeUndefined();
    for (const key of ['pq.txt', 'pp/4.txt']) expect(await s.stat(key), key).toBeDefined();
    await s.deletePrefix('p');
    await s.deletePrefix('pp');
    await s.delete('pq.txt');
  });

  it('leaves no object behind when a write fails part-way, and keeps the one it would replace', async () => {
    const s = storage();
    await expect(s.put('x/broken.bin', failingStream(100_000))).rejects.toThrow('disk on fire');
    expect(await s.stat('x/broken.bin')).toBeUndefined();
    await s.put('x/kept.txt', encode('old'));
    await expect(s.put('x/kept.txt', failingStream(100_000))).rejects.toThrow('disk on fire');
    expect(await text(await s.read('x/kept.txt'))).toBe('old');
    await s.deletePrefix('x');
  });

  it('refuses keys that could leave its root, in every operation', async () => {
    const s = storage();
    for (const key of ['../escape', 'a/../../b', '/abs', 'a//b', '', 'a/./b', '.hidden', 'a\\b', 'a/b/', 'x'.repeat(513)]) {
      const label = JSON.stringify(key).slice(0, 20);
      await expect(s.put(key, new Uint8Array(1)), label).rejects.toBeInstanceOf(StorageKeyError);
      await expect(s.read(key), label).rejects.toBeInstanceOf(StorageKeyError);
      await expect(s.stat(key), label).rejects.toBeInstanceOf(StorageKeyError);
      await expect(s.delete(key), label).rejects.toBeInstanceOf(StorageKeyError);
      await expect(s.signedUrl(key, { baseUrl: 'http://kiln.test' }), label).rejects.toBeInstanceOf(StorageKeyError);
      await expect(s.uploadUrl(key, { baseUrl: 'http://kiln.test', sizeBytes: 1, ttlSeconds: 60 }), label).rejects.toBeInstanceOf(
        StorageKeyError,
      );
    }
    for (const prefix of ['..', '../x', '/', '', 'a/../..']) {
      await expect(s.deletePrefix(prefix), prefix).rejects.toBeInstanceOf(StorageKeyError);
    }
  });

  it('answers a ping', async () => {
    await expect(storage().ping()).resolves.toBeUndefined();
  });
}
