/**
 * Fan-out to many subscribers: `npm run bench:fanout [-- --subscribers 100,1000 --steps 40]`.
 * N graphql-ws clients (one socket each) subscribe to one generation of the built-in model
 * (`steps` denoising steps at its default 256², no previews) on a Kiln started here; each
 * event's delivery delay is its arrival at a client less the time it happened (`at`, the
 * runner's clock for each step). Beside it, as the anchor, a raw `ws` server in the same process
 * broadcasts the same payloads (the messages Kiln sent), at the pace Kiln's events happened, to N
 * plain `ws` clients, one socket each, timed the same way. The clients run in a process of their
 * own (bench/fanout-clients.ts), in both cases.
 */
import fs from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { WebSocketServer } from 'ws';
import { parseCommandLine } from '../src/cli/command-line.js';

const USAGE = `usage: npm run bench:fanout [-- --subscribers 100,1000] [--steps 40]
  --subscribers N,…  subscriber counts, one measurement each (default 100,1000)
  --steps N          denoising steps of the watched generation (default 40)
  --help             this text`;
const { values } = parseCommandLine(USAGE, { subscribers: { type: 'string', default: '100,1000' }, steps: { type: 'string', default: '40' } });
// Loaded once the command line is read, so that --help does not wait for the whole service.
const [{ startKiln }, { loadConfig }, { startEmbeddedPostgres }, { createLogger }] = await Promise.all([
  import('../src/app.js'),
  import('../src/config.js'),
  import('../src/db/embedded-postgres.js'),
  import('../src/log.js'),
]);
const counts = values.subscribers!.split(',').map(Number);
const STEPS = Number(values.steps);
const log = createLogger('warn');
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-bench-fanout-'));
await fs.chmod(dir, 0o755);
const pg = await startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: 58000 + (process.pid % 1000), log });
const config = loadConfig({
  DATABASE_URL: await pg.url('kiln'),
  KILN_DATA_DIR: dir,
  PORT: '0',
  KILN_LOG_LEVEL: 'warn',
  KILN_RATE_LIMIT_PER_MINUTE: '0',
  KILN_WS_MAX_SUBSCRIPTIONS: '10',
});
// The API alone: a worker is started once every subscriber is listening, and stopped after.
const api = await startKiln({ ...config, role: 'api' }, log);
const startWorker = () => startKiln({ ...config, role: 'worker' as const, http: { ...config.http, port: 0 } }, log);
const wsUrl = `${api.url!.replace(/^http/, 'ws')}/graphql`;

const cpuMsSince = (start: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1)} ms, p99 ${pct(xs, 99).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;

async function generate(): Promise<string> {
  const res = await fetch(`${api.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query: 'mutation($i: GenerateInput!) { generate(input: $i) { id } }',
      variables: { i: { prompt: 'fan-out', steps: STEPS, previews: false, seed: 1 } },
    }),
  });
  return ((await res.json()) as { data: { generate: { id: string } } }).data.generate.id;
}

/** The subscriber process: resolves `ready` once all listen, `done` with what they measured. */
function clients(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'fanout-clients.ts'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! });
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  const done = new Promise<{ delays: number[]; samples: string[] }>((resolve, reject) => {
    lines.on('line', (line) => (line === 'ready' ? onReady() : resolve(JSON.parse(line))));
    child.once('exit', (code) => code !== 0 && reject(new Error(`subscribers exited with ${code}`)));
  });
  return { ready, done };
}

/** N graphql-ws subscribers to one generation, subscribed before it runs: every event's delay at every client. */
async function kilnFanout(n: number) {
  // No worker runs while the subscribers connect: the generation waits in the queue.
  const id = await generate();
  const subscribers = clients(['kiln', wsUrl, String(n), '0', id]);
  await subscribers.ready;
  const worker = await startWorker();
  // From the worker's start on (its start-up is not fan-out's cost); the job starts at once.
  const cpu = process.cpuUsage();
  const { delays, samples } = await subscribers.done;
  const cpuMs = cpuMsSince(cpu);
  await worker.stop();
  const sent = samples.map((s) => JSON.parse(s) as { at: string; message: unknown });
  const live = sent.slice(1);
  // The pace the live events happened at, for the anchor to keep.
  const gaps = live.slice(1).map((e, i) => Date.parse(e.at) - Date.parse(live[i]!.at));
  return { delays, cpuMs, events: sent.length, messages: live.map((e) => JSON.stringify(e.message)), gaps };
}

/** The same payloads broadcast by a bare `ws` server to N bare `ws` clients, at the pace Kiln's events happened. */
async function rawFanout(n: number, messages: string[], gaps: number[]) {
  const server = createServer();
  const wss = new WebSocketServer({ server });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const subscribers = clients(['raw', `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, String(n), String(messages.length)]);
  await subscribers.ready;
  const cpu = process.cpuUsage();
  for (const [i, m] of messages.entries()) {
    const payload = m.replace(/^\{/, `{"sentAt":${Date.now()},`);
    for (const client of wss.clients) client.send(payload);
    await new Promise((r) => setTimeout(r, gaps[i] ?? 0));
  }
  const { delays } = await subscribers.done;
  const cpuMs = cpuMsSince(cpu);
  for (const client of wss.clients) client.terminate();
  await new Promise<void>((r) => wss.close(() => r()));
  await new Promise<void>((r) => server.close(() => r()));
  return { delays, cpuMs };
}

for (const n of counts) {
  const kilnRun = await kilnFanout(n);
  const raw = await rawFanout(n, kilnRun.messages, kilnRun.gaps);
  if (kilnRun.delays.length !== n * (kilnRun.events - 1)) throw new Error(`${kilnRun.delays.length} live deliveries, not ${n} × ${kilnRun.events - 1}`);
  console.log(`${n} subscribers, ${kilnRun.events} events each (every subscriber got all of them), an event every ${pct(kilnRun.gaps, 50).toFixed(0)} ms:`);
  // The server process's CPU per delivery: for Kiln, its worker's share too (the runner is a process of its own).
  const perDelivery = (ms: number) => `${((ms * 1000) / (n * (kilnRun.events - 1))).toFixed(1)} µs CPU per delivery`;
  console.log(`  Kiln (graphql-ws)   delivery delay ${fmt(kilnRun.delays)}; ${perDelivery(kilnRun.cpuMs)}`);
  console.log(`  raw ws broadcast    delivery delay ${fmt(raw.delays)}; ${perDelivery(raw.cpuMs)}`);
  console.log(`  p99 ratio, Kiln / raw: ${(pct(kilnRun.delays, 99) / Math.max(0.1, pct(raw.delays, 99))).toFixed(1)}`);
}

await api.stop();
await pg.stop();
await fs.rm(dir, { recursive: true, force: true });
