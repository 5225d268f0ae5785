import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { JobFailure } from '../errors.js';
import type { Logger } from '../log.js';
import { type CacheLayout, SHA256 } from './model-cache-layout.js';
import { FileLock, type Holder, inspect, liveMarkers } from './model-cache-locks.js';

/** One model in the cache folder, complete or not. */
export interface CacheEntry {
  sha256: string;
  /** Its record exists: every file is there and verified. */
  complete: boolean;
  /** Bytes its folder holds now. */
  bytes: number;
  /** Last use: the record's mtime (the folder's while incomplete). */
  lastUsed: number;
  /** Live holders of its use markers, on any process of the host. */
  users: Holder[];
  /** Live holder of its model lock: a fetch (bringing in `bytes`) or an eviction under way. */
  locked: Holder | undefined;
}

const isMissing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';
const orMissing = <T>(fallback: T) => (err: unknown) => (isMissing(err) ? fallback : Promise.reject(err));

/** Everything the cache folder holds, read without locks (a snapshot for decisions and stats). */
export async function scanCache(layout: CacheLayout, staleMs: number): Promise<CacheEntry[]> {
  const names = await fs.readdir(layout.dir);
  const shas = new Set(names.map((n) => n.replace(/\.json$/, '')).filter((n) => SHA256.test(n)));
  const users = new Map<string, Holder[]>();
  for (const name of await fs.readdir(layout.inUse).catch(orMissing([] as string[]))) {
    const state = await inspect(path.join(layout.inUse, name), staleMs);
    if (!state?.live) continue;
    const sha = name.slice(0, name.indexOf('.'));
    users.set(sha, [...(users.get(sha) ?? []), state.holder ?? { host: '?', pid: 0, token: name }]);
  }
  const entries: CacheEntry[] = [];
  for (const sha256 of shas) {
    const record = await fs.stat(layout.record(sha256)).catch(orMissing(undefined));
    const folder = await fs.stat(layout.modelDir(sha256)).catch(orMissing(undefined));
    const lock = await inspect(layout.modelLock(sha256), staleMs);
    entries.push({
      sha256,
      complete: record !== undefined,
      bytes: folder ? await folderBytes(layout.modelDir(sha256)) : 0,
      lastUsed: (record ?? folder)?.mtimeMs ?? 0,
      users: users.get(sha256) ?? [],
      locked: lock?.live ? (lock.holder ?? { host: '?', pid: 0, token: '?' }) : undefined,
    });
  }
  return entries;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(orMissing([]))) {
    if (entry.isFile()) total += (await fs.stat(path.join(entry.parentPath, entry.name)).catch(orMissing({ size: 0 }))).size;
  }
  return total;
}

export interface SpaceLimits {
  maxBytes: number;
  minFreeBytes: number;
  staleMs: number;
  freeBytes: () => Promise<number>;
}

export interface Incoming {
  sha256: string;
  sizeBytes: number;
  /** What its download will still write. */
  missingBytes: number;
}

/**
 * Evicts idle models, least recently used first, until the incoming model fits under
 * `maxBytes` and leaves `minFreeBytes` free; fails with DISK_FULL when that cannot be done.
 * Other fetches under way count at their full size. Call it holding the cache lock.
 */
export async function makeRoom(layout: CacheLayout, limits: SpaceLimits, incoming: Incoming, log: Logger): Promise<void> {
  const others = (await scanCache(layout, limits.staleMs)).filter((e) => e.sha256 !== incoming.sha256);
  const arriving = others.map((e) => (e.locked?.bytes !== undefined && !e.complete ? Math.max(0, e.locked.bytes - e.bytes) : 0));
  let size = incoming.sizeBytes + others.reduce((n, e, i) => n + e.bytes + arriving[i]!, 0);
  const freeNow = await limits.freeBytes();
  let free = freeNow - incoming.missingBytes - arriving.reduce((a, b) => a + b, 0);
  const fits = () => size <= limits.maxBytes && free >= limits.minFreeBytes;
  // Leftovers of abandoned downloads go first, then complete models by last use.
  const idle = others
    .filter((e) => e.users.length === 0 && !e.locked)
    .sort((a, b) => Number(a.complete) - Number(b.complete) || a.lastUsed - b.lastUsed);
  for (const entry of idle) {
    if (fits()) break;
    if (await evict(layout, entry.sha256, limits.staleMs)) {
      size -= entry.bytes;
      free += entry.bytes;
      log.info({ model: entry.sha256, bytes: entry.bytes, lastUsed: new Date(entry.lastUsed).toISOString() }, 'evicted model from the cache');
    }
  }
  if (fits()) return;
  const held = others.filter((e) => e.users.length > 0 || e.locked);
  const tooBig = incoming.sizeBytes > limits.maxBytes;
  throw new JobFailure(
    'DISK_FULL',
    `no room in the model cache for model ${incoming.sha256.slice(0, 12)} (${formatBytes(incoming.sizeBytes)}, ` +
      `${formatBytes(incoming.missingBytes)} of it to download): ` +
      (tooBig
        ? `it is larger than the cache's limit of ${formatBytes(limits.maxBytes)}`
        : `with it the cache would hold ${formatBytes(size)} (limit ${formatBytes(limits.maxBytes)}) and leave ` +
          `${formatBytes(Math.max(0, free))} of ${formatBytes(freeNow)} free disk (floor ${formatBytes(limits.minFreeBytes)}); ` +
          `nothing idle is left to evict, in use: ${held.map(describe).join(', ') || 'nothing'}`),
    !tooBig,
  );
}

function describe(e: CacheEntry): string {
  const pids = [...new Set([...e.users, ...(e.locked ? [e.locked] : [])].map((h) => h.pid))];
  return `${e.sha256.slice(0, 12)} (${formatBytes(e.bytes)}, ${e.locked ? 'being fetched, ' : ''}pid ${pids.join(', ')})`;
}

/**
 * Removes one model unless someone uses or fetches it. The record goes first, then the markers
 * are checked: an acquirer marks use before looking for the record, so either it sees no record
 * (and waits for the model lock we hold) or we see its marker (and put the record back).
 */
async function evict(layout: CacheLayout, sha256: string, staleMs: number): Promise<boolean> {
  const lock = await FileLock.try(layout.modelLock(sha256), { staleMs });
  if (!(lock instanceof FileLock)) return false;
  try {
    const aside = path.join(layout.trash, `${sha256}.${crypto.randomBytes(6).toString('hex')}`);
    await fs.mkdir(aside, { recursive: true });
    const record = path.join(aside, 'record.json');
    const hadRecord = await fs.rename(layout.record(sha256), record).then(() => true, orMissing(false));
    if ((await liveMarkers(layout.inUse, sha256, staleMs, true)).length > 0) {
      if (hadRecord) await fs.rename(record, layout.record(sha256));
      await fs.rm(aside, { recursive: true, force: true });
      return false;
    }
    await fs.rename(layout.modelDir(sha256), path.join(aside, 'files')).catch(orMissing(undefined));
    await fs.rm(aside, { recursive: true, force: true });
    return true;
  } finally {
    await lock.release();
  }
}

export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${n.toFixed(1)} ${units[i]}`;
}
