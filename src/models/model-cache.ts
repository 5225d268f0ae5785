import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Model, ModelFile } from '../db/entities/model.js';
import { JobFailure } from '../errors.js';
import type { Logger } from '../log.js';
import { assertKey, type Storage } from '../storage/storage.js';
import { ChecksumMismatch, downloadFile, removePartials } from './model-cache-download.js';
import { CacheLayout, PARTIAL_SUFFIX, SHA256 } from './model-cache-layout.js';
import { FileLock, type Holder, inspect, liveMarkers, UseMarker } from './model-cache-locks.js';
import { makeRoom, scanCache, type SpaceLimits } from './model-cache-space.js';

export interface ModelCacheOptions {
  /** The cache's folder on this host (`KILN_MODEL_CACHE_DIR`); every worker of the host shares it. */
  dir: string;
  /** Bytes the cache may hold, the model being fetched included (`KILN_MODEL_CACHE_MAX_GB`). */
  maxBytes: number;
  /** Free disk a fetch must leave; idle models are evicted to keep it (`KILN_MIN_FREE_DISK_GB`). */
  minFreeBytes: number;
  storage: Storage;
  log: Logger;
  /**
   * A lock or use marker not refreshed for this long is taken for dead (default 30 s). Holders
   * on this host are also checked by pid, so a killed worker's lock is taken over at once.
   */
  staleMs?: number;
  /** Free bytes on the cache's disk (default: statfs of `dir`). */
  freeBytes?: () => Promise<number>;
}

/** What the cache needs of a model. */
export type CachedModel = Pick<Model, 'sha256' | 'storageKey' | 'files'>;

/** A model's folder on this host, held (never evicted) until `release`. */
export interface CachedModelDir {
  dir: string;
  /** Time spent fetching or waiting for another process's fetch (0 for a plain hit). */
  fetchMs: number;
  release(): void;
}

export interface ModelCacheStats {
  /** Bytes the cache folder holds (complete models and downloads under way). */
  sizeBytes: number;
  /** Complete models in the cache. */
  models: number;
  /** Acquisitions by this process that found the model here (or fetched by another process). */
  hits: number;
  /** Acquisitions by this process that downloaded it. */
  misses: number;
}

interface CacheRecord {
  sha256: string;
  sizeBytes: number;
  files: ModelFile[];
  completedAt: string;
}

/**
 * The worker's disk cache of model files fetched from storage (see CacheLayout for the folder).
 * Each model is downloaded once per host however many workers want it, verified file by file
 * against its sha256, and kept until room is needed; models in use by any process of the host
 * are never evicted.
 */
export class ModelCache {
  private readonly layout: CacheLayout;
  private readonly staleMs: number;
  private readonly limits: SpaceLimits;
  private readonly held = new Set<UseMarker>();
  private hits = 0;
  private misses = 0;

  constructor(private readonly opts: ModelCacheOptions) {
    this.layout = new CacheLayout(path.resolve(opts.dir));
    this.staleMs = opts.staleMs ?? 30_000;
    this.limits = {
      maxBytes: opts.maxBytes,
      minFreeBytes: opts.minFreeBytes,
      staleMs: this.staleMs,
      freeBytes:
        opts.freeBytes ??
        (async () => {
          const s = await fs.statfs(this.layout.dir);
          return s.bavail * s.bsize;
        }),
    };
  }

  /**
   * Creates the folder, or takes over the one a previous run left: removes what dead processes
   * left behind (temporary downloads, locks, use markers, half-done evictions).
   */
  async start(): Promise<void> {
    const { layout } = this;
    for (const dir of [layout.dir, layout.locks, layout.inUse, layout.trash]) await fs.mkdir(dir, { recursive: true });
    const cacheLock = await this.lockCache();
    try {
      await cacheLock.assertHeld();
      await fs.rm(layout.trash, { recursive: true, force: true });
      await fs.mkdir(layout.trash, { recursive: true });
      for (const name of await fs.readdir(layout.locks)) {
        const file = path.join(layout.locks, name);
        // Dead locks a breaker set aside and did not get to remove (it was killed).
        if (name.endsWith('.dead') && !(await inspect(file, this.staleMs))?.live) await fs.rm(file, { force: true });
      }
      const names = [...(await fs.readdir(layout.dir)), ...(await fs.readdir(layout.locks))];
      for (const sha of new Set(names.map((n) => n.replace(/\.(json|lock)$/, '')).filter((n) => SHA256.test(n)))) {
        // Taking a model's lock breaks it if its holder died; holding it, any partial is stale.
        const lock = await FileLock.try(layout.modelLock(sha), this.lockOptions());
        if (lock instanceof FileLock) await removePartials(layout.modelDir(sha)).finally(() => lock.release());
      }
      await liveMarkers(layout.inUse, undefined, this.staleMs, true);
    } finally {
      await cacheLock.release();
    }
    const stats = await this.stats();
    this.opts.log.info({ dir: layout.dir, sizeBytes: stats.sizeBytes, models: stats.models }, 'model cache ready');
  }

  /**
   * The folder holding `model`'s files on this host, downloading what is missing. When the
   * storage keeps files on this machine, that folder is returned as it is.
   */
  async acquire(model: CachedModel, options: { signal?: AbortSignal } = {}): Promise<CachedModelDir> {
    const local = this.opts.storage.localPath(model.storageKey);
    if (local !== undefined) return { dir: local, fetchMs: 0, release: () => undefined };
    checkModel(model);
    const marker = await UseMarker.place(this.layout.inUse, model.sha256, this.staleMs);
    this.held.add(marker);
    try {
      let fetchMs = 0;
      if (await this.isComplete(model.sha256)) {
        this.hits++;
      } else {
        const started = performance.now();
        if (await this.fetch(model, options.signal)) this.misses++;
        else this.hits++;
        fetchMs = performance.now() - started;
      }
      await this.touch(model.sha256);
      return {
        dir: this.layout.modelDir(model.sha256),
        fetchMs,
        release: () => {
          if (!this.held.delete(marker)) return;
          // Stamped while still marked: once unmarked, an eviction may take the record away.
          this.touchSync(model.sha256);
          marker.release();
        },
      };
    } catch (err) {
      this.held.delete(marker);
      marker.release();
      throw err;
    }
  }

  async stats(): Promise<ModelCacheStats> {
    const entries = await scanCache(this.layout, this.staleMs);
    return {
      sizeBytes: entries.reduce((n, e) => n + e.bytes, 0),
      models: entries.filter((e) => e.complete).length,
      hits: this.hits,
      misses: this.misses,
    };
  }

  /** Releases what this process still holds (call after the worker has stopped). */
  async stop(): Promise<void> {
    for (const marker of this.held) marker.release();
    this.held.clear();
  }

  /** Downloads what is missing under the model's lock; false when another process did it. */
  private async fetch(model: CachedModel, signal: AbortSignal | undefined): Promise<boolean> {
    const { layout, opts } = this;
    const sha = model.sha256;
    const sizeBytes = model.files.reduce((n, f) => n + f.sizeBytes, 0);
    const log = opts.log.child({ model: sha });
    const lock = await FileLock.take(layout.modelLock(sha), {
      ...this.lockOptions(),
      bytes: sizeBytes,
      signal,
      onWait: (holder) => log.info({ holder: holderInfo(holder) }, 'waiting for another fetch of this model'),
    });
    try {
      if (await this.isComplete(sha)) return false;
      const dir = layout.modelDir(sha);
      // Holding the lock, whatever a previous fetch left is stale: its partial files, and the
      // use markers of holders that died.
      await removePartials(dir);
      await liveMarkers(layout.inUse, sha, this.staleMs, true);
      const missing = await missingFiles(dir, model.files);
      const missingBytes = missing.reduce((n, f) => n + f.sizeBytes, 0);
      const cacheLock = await this.lockCache(signal);
      try {
        await cacheLock.assertHeld();
        await makeRoom(layout, this.limits, { sha256: sha, sizeBytes, missingBytes }, log);
      } finally {
        await cacheLock.release();
      }
      const started = performance.now();
      for (const file of missing) {
        const key = `${model.storageKey}/${file.path}`;
        await downloadFile(opts.storage, key, file, path.join(dir, file.path), signal).catch(async (err) => {
          // Storage holds other bytes than the model records: keep none of this model.
          if (err instanceof ChecksumMismatch) await fs.rm(dir, { recursive: true, force: true });
          throw err;
        });
      }
      await fs.mkdir(dir, { recursive: true });
      // What this fetch brought in is only a hit for others if no one else fetched beside it.
      await lock.assertHeld();
      await this.writeRecord(model, sizeBytes);
      log.info({ files: missing.length, bytes: missingBytes, ms: Math.round(performance.now() - started) }, 'model downloaded into the cache');
      return true;
    } finally {
      await lock.release();
    }
  }

  /** Written last, atomically: its presence is what makes the folder a hit. */
  private async writeRecord(model: CachedModel, sizeBytes: number) {
    const record: CacheRecord = { sha256: model.sha256, sizeBytes, files: model.files, completedAt: new Date().toISOString() };
    const temp = path.join(this.layout.modelDir(model.sha256), `.kiln-record${PARTIAL_SUFFIX}`);
    const fh = await fs.open(temp, 'w');
    try {
      await fh.writeFile(JSON.stringify(record));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(temp, this.layout.record(model.sha256));
  }

  private isComplete(sha256: string): Promise<boolean> {
    return fs.stat(this.layout.record(sha256)).then(
      () => true,
      (err) => ((err as NodeJS.ErrnoException).code === 'ENOENT' ? false : Promise.reject(err)),
    );
  }

  private async touch(sha256: string) {
    const now = new Date();
    await fs.utimes(this.layout.record(sha256), now, now);
  }

  private touchSync(sha256: string) {
    const now = new Date();
    try {
      fsSync.utimesSync(this.layout.record(sha256), now, now);
    } catch (err) {
      this.opts.log.warn({ err, model: sha256 }, 'could not record the model cache entry\'s last use');
    }
  }

  private lockCache(signal?: AbortSignal) {
    return FileLock.take(this.layout.cacheLock, { ...this.lockOptions(), signal });
  }

  private lockOptions() {
    return {
      staleMs: this.staleMs,
      onDead: (holder: Holder | undefined) => this.opts.log.warn({ holder: holderInfo(holder) }, 'took over a lock its holder left when it died'),
      onLost: () => this.opts.log.warn('another process took over a model cache lock we held (were we frozen?)'),
    };
  }
}

const holderInfo = (h: Holder | undefined) => (h ? { host: h.host, pid: h.pid } : 'unknown');

/** Files not yet here with their recorded size; a file of another size is removed. */
async function missingFiles(dir: string, files: ModelFile[]): Promise<ModelFile[]> {
  const missing: ModelFile[] = [];
  for (const file of files) {
    const target = path.join(dir, file.path);
    const stat = await fs.stat(target).catch(() => undefined);
    if (stat?.isFile() && stat.size === file.sizeBytes) continue;
    await fs.rm(target, { force: true });
    missing.push(file);
  }
  return missing;
}

/** Its hash names a folder and its paths name files in it: refuse anything that could escape. */
function checkModel(model: CachedModel) {
  if (!SHA256.test(model.sha256)) throw new JobFailure('MODEL_INVALID', `model sha256 ${JSON.stringify(model.sha256)} is not a sha256`, false);
  for (const file of model.files) {
    try {
      assertKey(file.path);
    } catch {
      throw new JobFailure('MODEL_INVALID', `model ${model.sha256.slice(0, 12)} has an unsafe file path ${JSON.stringify(file.path)}`, false);
    }
    if (file.path.endsWith(PARTIAL_SUFFIX) || !SHA256.test(file.sha256)) {
      throw new JobFailure('MODEL_INVALID', `model ${model.sha256.slice(0, 12)} has an invalid file entry ${JSON.stringify(file.path)}`, false);
    }
  }
}
