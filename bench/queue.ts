/**
 * Queue figures: `npm run bench:queue [-- --jobs 200]`. Starts Kiln (API and worker in one
 * process) on a throwaway embedded Postgres and prints
 * - pickup latency, submit → RUNNING, for jobs sent one at a time to an idle worker;
 * - the gap between one job's end and the next one's start with a backlog;
 * - end-to-end jobs/s through the whole path (mutation, queue, worker, events);
 * - raw pg-boss send + work() jobs/s for the same count, as the base of that ratio.
 * Jobs are the built-in model's smallest: 64×64, one step. Times come from Postgres's clock.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseCommandLine } from '../src/cli/command-line.js';

const USAGE = `usage: npm run bench:queue [-- --jobs 200]
  --jobs N      jobs for each measurement (default 200)
  --help        this text`;
const { values } = parseCommandLine(USAGE, { jobs: { type: 'string', default: '200' } });
// Loaded once the command line is read, so that --help does not wait for the whole service.
const [{ PgBoss }, { startKiln }, { loadConfig }, { startEmbeddedPostgres }, { createLogger }] = await Promise.all([
  import('pg-boss'),
  import('../src/app.js'),
  import('../src/config.js'),
  import('../src/db/embedded-postgres.js'),
  import('../src/log.js'),
]);
const N = Number(values.jobs);
const log = createLogger('warn');
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-bench-queue-'));
await fs.chmod(dir, 0o755);
const pg = await startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: 56000 + (process.pid % 1000), log });
const url = await pg.url('kiln');
const config = loadConfig({ DATABASE_URL: url, KILN_DATA_DIR: dir, PORT: '0', KILN_LOG_LEVEL: 'warn', KILN_RETRY_DELAY_MS: '0', KILN_MAX_BATCH: '1000' });
const kiln = await startKiln(config, log);
const TINY = { prompt: 'bench', width: 64, height: 64, steps: 1, previews: false };

const gql = async (query: string, variables: object) => {
  const res = await fetch(`${kiln.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data: any; errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
};
const generate = (input = TINY) => gql('mutation($i: GenerateInput!) { generate(input: $i) { id } }', { i: input }).then((d) => d.generate.id as string);
const batch = (n: number) =>
  gql('mutation($i: [GenerateInput!]!) { generateBatch(inputs: $i) { generations { id } } }', { i: Array(n).fill(TINY) }).then(
    (d) => d.generateBatch.generations.map((g: { id: string }) => g.id) as string[],
  );
const waitDone = async (ids: string[]) => {
  for (;;) {
    const [{ n }] = await kiln.ds.query(`SELECT count(*)::int AS n FROM jobs WHERE id = ANY($1) AND status IN ('COMPLETED','FAILED','CANCELLED')`, [ids]);
    if (n === ids.length) return;
    await new Promise((r) => setTimeout(r, 5));
  }
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1)} ms, p99 ${pct(xs, 99).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;

// Warm up: the runner process starts and loads the model once.
await waitDone([await generate()]);

// 1. Pickup latency on an idle worker: from the mutation's answer (the job is committed) to the
// worker taking it (started_at, from the same machine's clock).
const pickup: number[] = [];
const request: number[] = [];
for (let i = 0; i < N; i++) {
  const sent = Date.now();
  const id = await generate();
  const answered = Date.now();
  await waitDone([id]);
  const [row] = await kiln.ds.query(`SELECT extract(epoch FROM started_at) * 1000 AS started FROM jobs WHERE id = $1`, [id]);
  request.push(answered - sent);
  pickup.push(Number(row.started) - answered);
}
console.log(`generate mutation, request → answer: ${fmt(request)}`);
console.log(`pickup latency (answer → RUNNING), ${N} jobs on an idle worker: ${fmt(pickup)}`);

// 2. Gaps with a backlog: the whole batch is queued before the worker can take more than one.
const backlog = await batch(Math.min(N, 500));
await waitDone(backlog);
const gaps: number[] = (
  await kiln.ds.query(
    `SELECT extract(epoch FROM started_at - lag(completed_at) OVER (ORDER BY started_at)) * 1000 AS gap
     FROM jobs WHERE id = ANY($1) ORDER BY started_at`,
    [backlog],
  )
)
  .slice(1)
  .map((r: { gap: string }) => Number(r.gap));
console.log(`gap from one job's end to the next one's start, backlog of ${backlog.length}: ${fmt(gaps)}`);

// 3. End to end: mutations sent 10 at a time, until every job has completed.
let t0 = performance.now();
const ids: string[] = [];
for (let i = 0; i < N; i += 10) ids.push(...(await Promise.all(Array.from({ length: Math.min(10, N - i) }, () => generate()))));
await waitDone(ids);
const kilnRate = N / ((performance.now() - t0) / 1000);
console.log(`end to end (mutation → queue → worker → events → COMPLETED): ${kilnRate.toFixed(1)} jobs/s`);

// 4. Raw pg-boss on the same database: send N no-op jobs and run them with work() (defaults).
const boss = new PgBoss({ connectionString: url });
await boss.start();
await boss.createQueue('bench-raw');
let done = 0;
let finished!: () => void;
const allDone = new Promise<void>((r) => (finished = r));
t0 = performance.now();
for (let i = 0; i < N; i++) await boss.send('bench-raw', { i });
await boss.work('bench-raw', async () => {
  if (++done === N) finished();
});
await allDone;
const rawRate = N / ((performance.now() - t0) / 1000);
console.log(`raw pg-boss send + work() (default options, no-op handler): ${rawRate.toFixed(1)} jobs/s`);
console.log(`ratio, Kiln end to end / raw pg-boss: ${(kilnRate / rawRate).toFixed(2)}`);

await boss.stop({ graceful: false, close: true });
await kiln.stop();
await pg.stop();
await fs.rm(dir, { recursive: true, force: true });
