import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import type { CacheWorkerCommand, CacheWorkerEvent, CacheWorkerOptions } from './model-cache-worker.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

type Line = Partial<CacheWorkerEvent> & Record<string, unknown>;

export interface CacheWorker {
  child: ChildProcess;
  pid: number;
  /** Every line the process wrote so far: its log records and its events. */
  lines: Line[];
  send(command: CacheWorkerCommand): void;
  /** Resolves with the first line (already written or to come) that matches. */
  waitFor(match: (line: Line) => boolean, timeoutMs?: number): Promise<Line>;
  /** Calls `listener` after each new line; returns the unsubscribe function. */
  onLine(listener: () => void): () => void;
  /** Closes its stdin (it releases what it holds and exits) and waits for the exit. */
  stop(): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** Starts a process with its own model cache on the shared folder, and waits until it is ready. */
export async function startCacheWorker(options: CacheWorkerOptions): Promise<CacheWorker> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/model-cache-worker.ts', JSON.stringify(options)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: Line[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  readline.createInterface({ input: child.stdout! }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text) as Line);
    } catch {
      return;
    }
    waiters.forEach((w) => w());
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waitFor: CacheWorker['waitFor'] = (match, timeoutMs = 20_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = lines.find(match);
        if (found) {
          cleanup();
          resolve(found);
        }
      };
      const timer = setTimeout(() => fail(`no matching line within ${timeoutMs} ms`), timeoutMs);
      const onExit = () => fail('the process exited first');
      const fail = (why: string) => {
        cleanup();
        reject(new Error(`cache worker ${child.pid}: ${why}; lines: ${JSON.stringify(lines).slice(-2000)}; stderr: ${stderr.slice(-2000)}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
        child.off('exit', onExit);
      };
      waiters.add(check);
      child.once('exit', onExit);
      check();
    });
  const running = () => child.exitCode === null && child.signalCode === null;
  const worker: CacheWorker = {
    child,
    pid: child.pid!,
    lines,
    send: (command) => child.stdin!.write(`${JSON.stringify(command)}\n`),
    waitFor,
    onLine(listener) {
      waiters.add(listener);
      return () => waiters.delete(listener);
    },
    async stop() {
      if (running()) child.stdin!.end();
      await exited;
    },
    async kill(signal) {
      if (running()) child.kill(signal);
      await exited;
    },
  };
  try {
    await waitFor((l) => l.event === 'ready');
  } catch (err) {
    await worker.kill('SIGKILL');
    throw err;
  }
  return worker;
}

/** Resolves with the first of `workers` to write a line that matches. */
export function waitForAny(workers: CacheWorker[], match: (line: Line) => boolean, timeoutMs = 20_000): Promise<CacheWorker> {
  return new Promise((resolve, reject) => {
    const unsubscribe = workers.map((w) => w.onLine(check));
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no cache worker wrote a matching line within ${timeoutMs} ms`));
    }, timeoutMs);
    function check() {
      const found = workers.find((w) => w.lines.some(match));
      if (found) {
        done();
        resolve(found);
      }
    }
    function done() {
      clearTimeout(timer);
      unsubscribe.forEach((u) => u());
    }
    check();
  });
}
