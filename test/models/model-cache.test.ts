import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobFailure } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { type CachedModelDir, ModelCache, type ModelCacheOptions } from '../../src/models/model-cache.js';
import { LocalStorage } from '../../src/storage/local.js';
import { UrlSigner } from '../../src/storage/url-signer.js';
import { type CacheWorker, startCacheWorker, waitForAny } from '../support/model-cache-processes.js';
import { listTree, putModel, readsIn, RemoteLikeStorage, setLastUse } from '../support/model-cache-storage.js';

const KiB = 1024;
const log = createLogger('silent');

describe('model cache', () => {
  let root: string;
  let storageRoot: string;
  let cacheDir: string;
  let storage: RemoteLikeStorage;
  const caches: ModelCache[] = [];
  const workers: CacheWorker[] = [];

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-model-cache-'));
    storageRoot = path.join(root, 'storage');
    cacheDir = path.join(root, 'cache');
    storage = new RemoteLikeStorage(storageRoot);
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.kill('SIGKILL')));
    await Promise.all(caches.splice(0).map((c) => c.stop()));
    await fs.rm(root, { recursive: true, force: true });
  });

  async function openCache(options: Partial<ModelCacheOptions> = {}): Promise<ModelCache> {
    const cache = new ModelCache({ dir: cacheDir, maxBytes: 1024 * 1024 * KiB, minFreeBytes: 0, storage, log, ...options });
    caches.push(cache);
    await cache.start();
    return cache;
  }

  async function startWorker(options: { gated?: boolean } = {}): Promise<CacheWorker> {
    const worker = await startCacheWorker({
      storageRoot,
      cacheDir,
      readsLog: path.join(root, 'reads.log'),
      maxBytes: 1024 * 1024 * KiB,
      minFreeBytes: 0,
      gated: options.gated ?? false,
    });
    workers.push(worker);
    return worker;
  }

  /** Resolves once a download's temporary file has bytes in it. */
  async function partialWithBytes(dir: string): Promise<string> {
    for (;;) {
      const partial = (await listTree(dir).catch(() => [])).find((f) => f.endsWith('.kiln-partial'));
      if (partial && (await fs.stat(path.join(dir, partial)).catch(() => undefined))?.size) return partial;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** The files in a lease's folder, by path, to compare with what was stored. */
  async function modelFiles(lease: CachedModelDir): Promise<Record<string, Buffer>> {
    const files = await listTree(lease.dir);
    return Object.fromEntries(await Promise.all(files.map(async (f) => [f, await fs.readFile(path.join(lease.dir, f))])));
  }

  it('uses the storage folder as it is when the storage keeps files on this machine', async () => {
    const local = new LocalStorage(storageRoot, new UrlSigner('model-cache-test-secret-of-enough-length', 3600));
    const model = await putModel(local, 'on-disk', { 'model.onnx': 4 * KiB });
    const cache = await openCache({ storage: local });
    const lease = await cache.acquire(model);
    expect(lease.dir).toBe(local.localPath(model.storageKey));
    expect(lease.fetchMs).toBe(0);
    lease.release();
    expect(await listTree(cacheDir)).toEqual([]);
  });

  it('downloads and verifies a model on a miss, reads nothing on a hit, and keeps it across restarts', async () => {
    const model = await putModel(storage, 'two-files', { 'unet/model.onnx': 200 * KiB, 'text_encoder.onnx': 3 * KiB });
    const cache = await openCache();

    const first = await cache.acquire(model);
    expect(first.dir).toBe(path.join(cacheDir, model.sha256));
    expect(storage.reads.sort()).toEqual([`${model.storageKey}/text_encoder.onnx`, `${model.storageKey}/unet/model.onnx`]);
    expect(await modelFiles(first)).toEqual(Object.fromEntries(model.bytes));
    expect(first.fetchMs).toBeGreaterThan(0);
    first.release();

    const second = await cache.acquire(model);
    expect(second.fetchMs).toBe(0);
    second.release();
    expect(storage.reads).toHaveLength(2);
    expect(await cache.stats()).toEqual({ sizeBytes: model.sizeBytes, models: 1, hits: 1, misses: 1 });

    const restarted = await openCache();
    const third = await restarted.acquire(model);
    expect(await modelFiles(third)).toEqual(Object.fromEntries(model.bytes));
    third.release();
    expect(storage.reads).toHaveLength(2);
    expect(await restarted.stats()).toMatchObject({ hits: 1, misses: 0 });
  });

  it('refuses a model whose stored bytes do not match its sha256 and keeps nothing of it', async () => {
    const model = await putModel(storage, 'corrupt', { 'a.onnx': 8 * KiB, 'b.onnx': 8 * KiB }, ['b.onnx']);
    const cache = await openCache();
    const err = await cache.acquire(model).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobFailure);
    expect(err).toMatchObject({ code: 'MODEL_CORRUPT', retryable: true });
    expect((err as Error).message).toContain(`${model.storageKey}/b.onnx`);
    expect((err as Error).message).toContain(model.files[1]!.sha256);
    expect(await listTree(cacheDir)).toEqual([]);

    // Once storage holds the right bytes, the next attempt succeeds.
    await storage.put(`${model.storageKey}/b.onnx`, model.bytes.get('b.onnx')!);
    const lease = await cache.acquire(model);
    expect(await modelFiles(lease)).toEqual(Object.fromEntries(model.bytes));
    lease.release();
  });

  it('downloads each file once when two worker processes ask for the same uncached model at once', async () => {
    const model = await putModel(storage, 'shared', { 'unet.onnx': 256 * KiB, 'vae.onnx': 16 * KiB });
    const [a, b] = await Promise.all([startWorker({ gated: true }), startWorker({ gated: true })]);
    a.send({ cmd: 'acquire', model });
    b.send({ cmd: 'acquire', model });
    // One of them downloads (its read is held half-way); the other waits for it.
    const isHeld = (l: { event?: string }) => l.event === 'read-held';
    const isWaiting = (l: Record<string, unknown>) => l.msg === 'waiting for another fetch of this model';
    const downloader = await waitForAny([a, b], isHeld);
    const waiter = downloader === a ? b : a;
    await waiter.waitFor(isWaiting);
    for (const w of [a, b]) w.send({ cmd: 'open-gate' });

    const [gotA, gotB] = await Promise.all([a.waitFor((l) => l.event === 'acquired'), b.waitFor((l) => l.event === 'acquired')]);
    expect(gotA.dir).toBe(path.join(cacheDir, model.sha256));
    expect(gotB.dir).toBe(gotA.dir);
    const reads = await readsIn(path.join(root, 'reads.log'));
    expect(reads.map((r) => r.key).sort()).toEqual([`${model.storageKey}/unet.onnx`, `${model.storageKey}/vae.onnx`]);
    expect(new Set(reads.map((r) => r.pid))).toEqual(new Set([downloader.pid]));
    expect(waiter.lines.some(isHeld)).toBe(false);
    const files = await listTree(gotA.dir as string);
    expect(files.sort()).toEqual(['unet.onnx', 'vae.onnx']);
    for (const f of files) expect(await fs.readFile(path.join(gotA.dir as string, f))).toEqual(model.bytes.get(f));
  });

  it('stops waiting for another fetch of the model when its signal aborts, and the fetch goes on', async () => {
    let openGate!: () => void;
    let held!: () => void;
    const readHeld = new Promise<void>((resolve) => (held = resolve));
    storage = new RemoteLikeStorage(storageRoot, { gate: new Promise((resolve) => (openGate = resolve)), onHeld: () => held() });
    const model = await putModel(storage, 'cancelled', { 'model.onnx': 128 * KiB });
    const cache = await openCache();
    const first = cache.acquire(model);
    await readHeld;
    const stop = new AbortController();
    const second = cache.acquire(model, { signal: stop.signal });
    stop.abort(new Error('job cancelled'));
    await expect(second).rejects.toThrow('job cancelled');
    expect(await fs.readdir(path.join(cacheDir, '.in-use'))).toHaveLength(1);
    openGate();
    const lease = await first;
    expect(await modelFiles(lease)).toEqual(Object.fromEntries(model.bytes));
    lease.release();
    expect(storage.reads).toHaveLength(1);
  });

  it('evicts the least recently used idle model and keeps the one in use, even when it was used longest ago', async () => {
    const size = 32 * KiB;
    const [m1, m2, m3, m4] = await Promise.all(['m1', 'm2', 'm3', 'm4'].map((n) => putModel(storage, n, { 'model.onnx': size })));
    const cache = await openCache({ maxBytes: 3 * size });
    const inUse = await cache.acquire(m1!);
    for (const m of [m2!, m3!]) (await cache.acquire(m)).release();
    // m1 was used first of all, but it is still held; of the idle ones, m3 was used longest ago.
    const now = Date.now();
    await setLastUse(cacheDir, m1!.sha256, new Date(now - 300_000));
    await setLastUse(cacheDir, m3!.sha256, new Date(now - 200_000));
    await setLastUse(cacheDir, m2!.sha256, new Date(now - 100_000));

    const lease = await cache.acquire(m4!);
    lease.release();
    const cached = (await fs.readdir(cacheDir)).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
    expect(cached).toEqual([m1!.sha256, m2!.sha256, m4!.sha256].sort());
    expect(await fs.readFile(path.join(inUse.dir, 'model.onnx'))).toEqual(m1!.bytes.get('model.onnx'));
    expect(await cache.stats()).toMatchObject({ sizeBytes: 3 * size, models: 3 });
    inUse.release();
  });

  it('evicts idle models to keep the free-disk floor', async () => {
    const size = 32 * KiB;
    const [m1, m2, m3] = await Promise.all(['f1', 'f2', 'f3'].map((n) => putModel(storage, n, { 'model.onnx': size })));
    // A disk with 2.5 models' worth free above the floor, less what the cache writes.
    let used = 0;
    const cache = await openCache({ minFreeBytes: 10 * size, freeBytes: async () => 12.5 * size - used });
    for (const m of [m1!, m2!]) {
      (await cache.acquire(m)).release();
      used += size;
    }
    await setLastUse(cacheDir, m1!.sha256, new Date(Date.now() - 60_000));
    (await cache.acquire(m3!)).release();
    const cached = (await fs.readdir(cacheDir)).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
    expect(cached).toEqual([m2!.sha256, m3!.sha256].sort());
  });

  it('fails clearly when the room cannot be made because the rest is in use, and keeps nothing of the model', async () => {
    const size = 32 * KiB;
    const [m1, m2, m3] = await Promise.all(['u1', 'u2', 'u3'].map((n) => putModel(storage, n, { 'model.onnx': size })));
    const cache = await openCache({ maxBytes: 2 * size });
    const held = [await cache.acquire(m1!), await cache.acquire(m2!)];
    const err = await cache.acquire(m3!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobFailure);
    expect(err).toMatchObject({ code: 'DISK_FULL', retryable: true });
    const message = (err as Error).message;
    expect(message).toContain(`model ${m3!.sha256.slice(0, 12)} (32.0 KiB`);
    expect(message).toMatch(/free disk/);
    for (const m of [m1!, m2!]) expect(message).toContain(`${m.sha256.slice(0, 12)} (32.0 KiB, pid ${process.pid})`);
    expect((await fs.readdir(cacheDir)).some((n) => n.startsWith(m3!.sha256))).toBe(false);
    expect(await fs.readdir(path.join(cacheDir, '.in-use'))).toHaveLength(2);

    // Once one is released, it is evicted for the newcomer.
    held[0]!.release();
    (await cache.acquire(m3!)).release();
    held[1]!.release();

    const huge = await putModel(storage, 'huge', { 'model.onnx': 3 * size });
    await expect(cache.acquire(huge)).rejects.toMatchObject({ code: 'DISK_FULL', retryable: false });
  });

  it('never evicts a model another process uses, and frees it once that process has died', async () => {
    const size = 32 * KiB;
    const [m1, m2, m3] = await Promise.all(['p1', 'p2', 'p3'].map((n) => putModel(storage, n, { 'model.onnx': size })));
    const other = await startWorker();
    other.send({ cmd: 'acquire', model: m1! });
    await other.waitFor((l) => l.event === 'acquired');
    const cache = await openCache({ maxBytes: 2 * size });
    (await cache.acquire(m2!)).release();
    await setLastUse(cacheDir, m1!.sha256, new Date(Date.now() - 60_000));
    (await cache.acquire(m3!)).release();
    const cached = async () => (await fs.readdir(cacheDir)).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
    expect(await cached()).toEqual([m1!.sha256, m3!.sha256].sort());

    // Its holder is killed without releasing: its marker no longer protects m1.
    await other.kill('SIGKILL');
    (await cache.acquire(m2!)).release();
    expect(await cached()).not.toContain(m1!.sha256);
  });

  it('recovers a download left half-done by a killed process: its lock is taken over and its temporary file removed', async () => {
    const model = await putModel(storage, 'interrupted', { 'unet.onnx': 256 * KiB });
    const cache = await openCache();
    const victim = await startWorker({ gated: true });
    victim.send({ cmd: 'acquire', model });
    await victim.waitFor((l) => l.event === 'read-held');
    const partial = await partialWithBytes(path.join(cacheDir, model.sha256));
    expect(await listTree(cacheDir)).toEqual(expect.arrayContaining([`.locks/${model.sha256}.lock`, `${model.sha256}/${partial}`]));
    await victim.kill('SIGKILL');

    const started = performance.now();
    const lease = await cache.acquire(model);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(await modelFiles(lease)).toEqual(Object.fromEntries(model.bytes));
    lease.release();
    const left = await listTree(cacheDir);
    expect(left.filter((f) => f.endsWith('.kiln-partial') || f.startsWith('.locks/') || f.startsWith('.in-use/'))).toEqual([]);
  });

  it('cleans up after a killed process when it starts: stale temporary files, locks and use markers', async () => {
    const model = await putModel(storage, 'left-over', { 'unet.onnx': 256 * KiB });
    const victim = await startWorker({ gated: true });
    victim.send({ cmd: 'acquire', model });
    await victim.waitFor((l) => l.event === 'read-held');
    await partialWithBytes(path.join(cacheDir, model.sha256));
    await victim.kill('SIGKILL');

    await openCache();
    expect(await listTree(cacheDir)).toEqual([]);
  });
});
