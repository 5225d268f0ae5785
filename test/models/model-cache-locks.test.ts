import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FileLock, inspect } from '../../src/models/model-cache-locks.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const STALE_MS = 1_000;

const hasProc = await fs.stat('/proc/self/stat').then(() => true, () => false);

/** Another process of this host holding the lock on `file` (refreshing it every staleMs / 4), once it says so. */
async function holder(file: string, staleMs = STALE_MS) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/lock-holder.ts', file, String(staleMs)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    const next = waiting.shift();
    if (next) next(line);
    else lines.push(line);
  });
  const next = () => new Promise<string>((resolve) => (lines.length ? resolve(lines.shift()!) : waiting.push(resolve)));
  expect(await next()).toBe('held');
  return {
    child,
    check: async () => {
      child.stdin!.write('check\n');
      return next();
    },
  };
}

/** Makes the lock file look as if nobody had refreshed it for a minute. */
const backdate = async (file: string) => {
  const old = new Date(Date.now() - 60_000);
  await fs.utimes(file, old, old);
};

describe('model cache locks between processes of one host', () => {
  let dir: string;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-locks-'));
  });
  afterEach(() => {
    for (const c of children.splice(0)) {
      if (c.exitCode === null) c.kill('SIGKILL');
    }
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('never take over the lock of a holder that still runs, however long ago it refreshed the file', async () => {
    const file = path.join(dir, 'alive.lock');
    // It refreshes every 15 s: within this test, the file stays as old as it is made.
    const h = await holder(file, 60_000);
    children.push(h.child);
    // What a CPU-starved holder looks like: its refresh has not run for far longer than staleMs.
    await backdate(file);
    expect((await inspect(file, STALE_MS))?.live).toBe(true);
    expect(await FileLock.try(file, { staleMs: STALE_MS })).toEqual({ heldBy: expect.objectContaining({ pid: h.child.pid }) });
    expect(await h.check()).toBe('held');
  });

  it('take over the lock of a killed holder at once, without waiting for the file to go stale', async () => {
    const file = path.join(dir, 'killed.lock');
    const h = await holder(file);
    children.push(h.child);
    const exited = new Promise((r) => h.child.once('exit', r));
    h.child.kill('SIGKILL');
    await exited;
    const lock = await FileLock.try(file, { staleMs: 60_000 });
    expect(lock).toBeInstanceOf(FileLock);
    await (lock as FileLock).release();
  });

  it.skipIf(!hasProc)('take over a stopped holder\'s lock once stale, and fence the holder when it wakes', async () => {
    const file = path.join(dir, 'stopped.lock');
    const staleMs = 10_000;
    const h = await holder(file, staleMs);
    children.push(h.child);
    h.child.kill('SIGSTOP');
    // The kernel stops it once it is scheduled: wait until /proc says so.
    await expect.poll(async () => (await fs.readFile(`/proc/${h.child.pid}/stat`, 'utf8')).split(') ')[1]![0]).toBe('T');
    expect((await inspect(file, staleMs))?.live).toBe(true); // fresh: stopped a moment ago
    await backdate(file);
    const lock = await FileLock.try(file, { staleMs });
    expect(lock).toBeInstanceOf(FileLock);
    h.child.kill('SIGCONT');
    expect(await h.check()).toBe('lost');
    await (lock as FileLock).release();
  });

  it.skipIf(!hasProc)('do not mistake a new process that got a dead holder\'s pid for the holder', async () => {
    const file = path.join(dir, 'reused.lock');
    // The file names a pid that runs (this one's parent) but a start time that pid never had.
    await fs.writeFile(file, JSON.stringify({ host: os.hostname(), pid: process.ppid, started: '1', token: 'x' }));
    expect((await inspect(file, STALE_MS))?.live).toBe(false);
  });
});
