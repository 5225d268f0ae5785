import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Cross-process locks and use markers for the model cache: small files naming their holder,
 * refreshed (mtime) while held. A holder on this host is judged by its process, never by the
 * file's age: alive (the pid runs, and started when the holder says, so a reused pid does not
 * count) or dead, whatever a starved CPU did to its refreshes. Only a holder that cannot be seen
 * that way (one on another host sharing the folder, or a process of this host that is stopped)
 * is judged by its refreshes, dead once nobody refreshed the file for `staleMs`; such a holder
 * may wake after its lock was taken over, so it is fenced: `FileLock.assertHeld` before each
 * step that must not run twice at once. A killed holder's lock is taken over at once by the next
 * process on the same host.
 */

/** Who holds a lock or marker. `bytes`: the size a fetch holding a model lock is bringing in. */
export interface Holder {
  host: string;
  pid: number;
  /** When the process started (clock ticks since boot, where /proc tells): the pid and this name one process. */
  started?: string;
  token: string;
  bytes?: number;
}

export interface HolderState {
  /** Undefined when the file cannot be parsed (its holder was killed while writing it). */
  holder: Holder | undefined;
  live: boolean;
  raw: string;
  ino: number;
}

const HOST = os.hostname();
/** Tokens this process holds now: a file naming our pid but another token is a previous run's. */
const ours = new Set<string>();

const newToken = () => crypto.randomBytes(8).toString('hex');
const isMissing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A process of this host as /proc shows it: its state letter and start time; undefined where /proc cannot tell. */
function procStat(pid: number): { state: string; started: string } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: the fields after it follow the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, started: fields[19]! };
  } catch {
    return undefined;
  }
}

const STARTED = procStat(process.pid)?.started;

/**
 * Whether a holder on this host is alive: 'yes', 'no', or 'unknown' for a stopped process
 * (SIGSTOP, a debugger), which may never wake.
 */
function localHolderAlive(holder: Holder): 'yes' | 'no' | 'unknown' {
  if (!pidRuns(holder.pid)) return 'no';
  const proc = procStat(holder.pid);
  if (!proc) return 'yes';
  if (holder.started !== undefined && proc.started !== holder.started) return 'no';
  return proc.state === 'T' || proc.state === 't' ? 'unknown' : 'yes';
}

/** The state of a lock or marker file; undefined when there is none. */
export async function inspect(file: string, staleMs: number): Promise<HolderState | undefined> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
  try {
    const stat = await fh.stat();
    const raw = await fh.readFile('utf8');
    const holder = parseHolder(raw);
    let live = Date.now() - stat.mtimeMs < staleMs;
    if (holder?.host === HOST) {
      if (holder.pid === process.pid) live = ours.has(holder.token);
      else {
        const alive = localHolderAlive(holder);
        if (alive !== 'unknown') live = alive === 'yes';
      }
    }
    return { holder, live, raw, ino: stat.ino };
  } finally {
    await fh.close();
  }
}

function parseHolder(raw: string): Holder | undefined {
  try {
    const h = JSON.parse(raw) as Partial<Holder>;
    if (typeof h.host === 'string' && typeof h.pid === 'number' && typeof h.token === 'string') return h as Holder;
  } catch {
    // judged by its mtime alone
  }
  return undefined;
}

function holderOf(extra: { bytes?: number } = {}): Holder {
  return { host: HOST, pid: process.pid, ...(STARTED ? { started: STARTED } : {}), token: newToken(), ...extra };
}

/** Creates `file` holding `holder`; false when it exists already. */
async function create(file: string, holder: Holder): Promise<boolean> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await fh.writeFile(JSON.stringify(holder));
    await fh.close();
    return true;
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fsp.rm(file, { force: true });
    throw err;
  }
}

/**
 * Removes a dead lock file, unless someone replaced it since it was judged: it is moved aside
 * first (atomic: of two breakers only one gets it) and put back when it is not the one judged.
 */
async function breakDead(file: string, judged: HolderState): Promise<void> {
  const aside = `${file}.${newToken()}.dead`;
  try {
    await fsp.rename(file, aside);
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  const moved = await inspect(aside, Infinity);
  if (moved && (moved.ino !== judged.ino || moved.raw !== judged.raw)) await fsp.link(aside, file).catch(() => undefined);
  await fsp.rm(aside, { force: true });
}

/** A lock this process held was taken over while it was not looking (it was stopped, or too slow on a shared folder). */
export class LockLost extends Error {
  override name = 'LockLost';
}

export interface LockOptions {
  staleMs: number;
  /** Recorded in the lock for others to read (Holder.bytes). */
  bytes?: number;
  /** Called before a dead holder's lock is taken over. */
  onDead?: (holder: Holder | undefined) => void;
  /** Called if another process takes the lock over while we hold it (we were judged dead). */
  onLost?: () => void;
}

/** An exclusive lock held by this process, refreshed until released. */
export class FileLock {
  private readonly timer: NodeJS.Timeout;
  private released = false;

  private constructor(
    readonly file: string,
    private readonly holder: Holder,
    private readonly opts: LockOptions,
  ) {
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), opts.staleMs / 4).unref();
  }

  /** Takes the lock if it is free or its holder is dead; otherwise answers who holds it. */
  static async try(file: string, opts: LockOptions): Promise<FileLock | { heldBy: Holder | undefined }> {
    const holder = holderOf(opts.bytes !== undefined ? { bytes: opts.bytes } : {});
    for (;;) {
      ours.add(holder.token);
      let created = false;
      try {
        created = await create(file, holder);
      } finally {
        if (!created) ours.delete(holder.token);
      }
      if (created) return new FileLock(file, holder, opts);
      const state = await inspect(file, opts.staleMs);
      if (state?.live) return { heldBy: state.holder };
      if (state) {
        opts.onDead?.(state.holder);
        await breakDead(file, state);
      }
    }
  }

  /** Waits for the lock; `onWait` is called once, with the holder, when it has to wait. */
  static async take(
    file: string,
    opts: LockOptions & { onWait?: (holder: Holder | undefined) => void; signal?: AbortSignal },
  ): Promise<FileLock> {
    let pause = 10;
    for (let waited = false; ; waited = true) {
      opts.signal?.throwIfAborted();
      const got = await FileLock.try(file, opts);
      if (got instanceof FileLock) return got;
      if (!waited) opts.onWait?.(got.heldBy);
      await delay(pause, undefined, { signal: opts.signal });
      pause = Math.min(pause * 2, 250);
    }
  }

  /**
   * Throws LockLost unless the file still names this lock: called before a step that must not
   * run beside another holder's (this process may have been stopped, and its lock taken over).
   */
  async assertHeld(): Promise<void> {
    const state = await inspect(this.file, Infinity);
    if (this.released || state?.holder?.token !== this.holder.token) throw new LockLost(`the lock ${this.file} was taken over by another process`);
  }

  private async refresh() {
    const state = await inspect(this.file, Infinity);
    if (this.released) return;
    if (state?.holder?.token !== this.holder.token) {
      clearInterval(this.timer);
      this.opts.onLost?.();
      return;
    }
    const now = new Date();
    await fsp.utimes(this.file, now, now);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    const state = await inspect(this.file, Infinity);
    if (state?.holder?.token === this.holder.token) await fsp.rm(this.file, { force: true });
    ours.delete(this.holder.token);
  }
}

/**
 * Says "this process uses it" without excluding anyone: a file `<dir>/<name>.<token>` per
 * holder, refreshed while held and removed (synchronously) on release.
 */
export class UseMarker {
  private readonly timer: NodeJS.Timeout;
  private released = false;

  private constructor(
    private readonly file: string,
    private readonly holder: Holder,
    staleMs: number,
  ) {
    this.timer = setInterval(() => void this.refresh(), staleMs / 4).unref();
  }

  static async place(dir: string, name: string, staleMs: number): Promise<UseMarker> {
    const holder = holderOf();
    const marker = new UseMarker(path.join(dir, `${name}.${holder.token}`), holder, staleMs);
    ours.add(holder.token);
    try {
      await fsp.writeFile(marker.file, JSON.stringify(holder), { flag: 'wx' });
    } catch (err) {
      marker.release();
      throw err;
    }
    return marker;
  }

  private async refresh() {
    const now = new Date();
    await fsp.utimes(this.file, now, now).catch(() => undefined);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    fs.rmSync(this.file, { force: true });
    ours.delete(this.holder.token);
  }
}

/**
 * The live holders of markers named `<name>.*` in `dir` (of every marker when `name` is
 * undefined); dead markers are removed when `prune` is set.
 */
export async function liveMarkers(dir: string, name: string | undefined, staleMs: number, prune: boolean): Promise<Holder[]> {
  const live: Holder[] = [];
  for (const entry of await fsp.readdir(dir)) {
    if (name !== undefined && !entry.startsWith(`${name}.`)) continue;
    const file = path.join(dir, entry);
    const state = await inspect(file, staleMs);
    if (state?.live) live.push(state.holder ?? { host: '?', pid: 0, token: entry });
    else if (state && prune) await fsp.rm(file, { force: true });
  }
  return live;
}
