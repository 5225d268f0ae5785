import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * An external trainer's process: started in a process group of its own (so that a stop reaches
 * the whole tree — `accelerate launch` and its Python workers, dataloader processes — and a
 * signal meant for Kiln does not), its output cut into lines on `\n` and on tqdm's `\r`, and
 * stopped with SIGINT (Python's KeyboardInterrupt, which both tools handle) then SIGKILL.
 *
 * The group's id is kept in `trainer.pgid` in the work folder while it runs: if Kiln itself was
 * killed, the next attempt in that folder kills the orphaned group before it starts another.
 */

export interface ToolExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the command could not be started at all (ENOENT, EACCES). */
  spawnError: Error | null;
}

export interface ToolProcess {
  readonly exited: Promise<ToolExit>;
  /** The last lines it wrote (stdout and stderr), for error messages. */
  tail(): string[];
  /** SIGINT to the group, SIGKILL after `graceMs` if it is still there; resolves once it exited. */
  stop(graceMs: number): Promise<ToolExit>;
}

const TAIL_LINES = 40;
const PGID_FILE = 'trainer.pgid';

export async function startToolProcess(command: string[], args: string[], options: { cwd: string; onLine(line: string): void }): Promise<ToolProcess> {
  await killOrphan(options.cwd);
  const [file, ...rest] = command;
  const child = spawn(file!, [...rest, ...args], { cwd: options.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const pgidFile = path.join(options.cwd, PGID_FILE);
  const recorded = child.pid ? fs.writeFile(pgidFile, String(child.pid)) : Promise.resolve();
  const lines: string[] = [];
  const take = (line: string) => {
    const text = line.trimEnd();
    if (!text) return;
    lines.push(text.length > 500 ? `${text.slice(0, 500)}…` : text);
    if (lines.length > TAIL_LINES) lines.shift();
    options.onLine(text);
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (rest + chunk).split(/\r\n|\r|\n/);
      rest = parts.pop()!;
      parts.forEach(take);
    });
    stream.on('end', () => rest && take(rest));
  }
  // Whatever the leader leaves running (workers, a wrapper's children) goes with it, and must:
  // they hold its output pipes open, and 'close' waits for those.
  child.once('exit', () => child.pid && signalGroup(child.pid, 'SIGKILL'));
  const exited = new Promise<ToolExit>((resolve) => {
    child.once('error', (err) => resolve({ code: null, signal: null, spawnError: err }));
    child.once('close', (code, signal) => resolve({ code, signal, spawnError: null }));
  }).then(async (exit) => {
    if (child.pid) await groupGone(child.pid);
    await recorded;
    await fs.rm(pgidFile, { force: true });
    return exit;
  });
  await recorded;
  return {
    exited,
    tail: () => [...lines],
    async stop(graceMs) {
      if (child.pid) signalGroup(child.pid, 'SIGINT');
      const timer = setTimeout(() => child.pid && signalGroup(child.pid, 'SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function signalGroup(pgid: number, signal: NodeJS.Signals) {
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is gone already.
  }
}

/** Waits (a few seconds at most) until no process of the group is left, so that the GPU memory it held is free. */
async function groupGone(pgid: number) {
  for (let waited = 0; waited < 5000; waited += 20) {
    if (!groupExists(pgid)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The file outlives its group only when Kiln died while the tool ran; the retry that finds it
 * soon after kills what is left. (Were the id reused by then for another group's leader, that
 * group would be killed: Linux hands process ids out in increasing order, so that takes the
 * counter wrapping round pid_max in the meantime.)
 */
export async function killOrphan(workDir: string) {
  const pgid = Number(await fs.readFile(path.join(workDir, PGID_FILE), 'utf8').catch(() => ''));
  if (Number.isSafeInteger(pgid) && pgid > 1) signalGroup(pgid, 'SIGKILL');
}
