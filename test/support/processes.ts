import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { httpClient, type GraphQLClient } from './graphql.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface KilnProcess {
  child: ChildProcess;
  /** Where it listens: the API, or a worker's health and metrics. */
  url: string | undefined;
  gql: GraphQLClient;
  /** Every JSON log line the process wrote so far. */
  logs: Record<string, unknown>[];
  /** Resolves with the first log line that matches. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

/** Starts Kiln as its own process, the way `npm start` does, and waits until it is up. */
export async function spawnKiln(env: Record<string, string>, args: string[] = []): Promise<KilnProcess> {
  // Every role listens (a worker for health and metrics): each process gets a port of its own.
  const port = env.PORT ?? String(await freePort());
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, HOST: '127.0.0.1', KILN_LOG_LEVEL: 'info', ...env, PORT: port },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
      waiters.forEach((w) => w());
    } catch {
      // not a log line
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitForLog: KilnProcess['waitForLog'] = (match, timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = logs.find(match);
        if (found) {
          cleanup();
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`));
      }, timeoutMs);
      const onExit = () => {
        cleanup();
        reject(new Error(`Kiln exited before the expected log line; stderr: ${stderr.slice(-2000)}`));
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
  const ready = await waitForLog((l) => l.msg === 'Kiln is listening' || l.msg === 'health and metrics are served');
  const url = typeof ready.url === 'string' ? ready.url.replace(/\/graphql$/, '') : undefined;
  return {
    child,
    url,
    gql: httpClient(url ?? ''),
    logs,
    waitForLog,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
