/**
 * The engine's own cost per job: `npm run bench:queue [-- --jobs 500]`. On one throwaway embedded
 * Postgres (durable commits, as in production), side by side in one run:
 * - raw pg-boss: a backlog inserted at once, then a tight loop fetching one job and completing
 *   it (the anchor: what the queue alone costs);
 * - Kiln end to end with a no-op pipeline (bench/noop-kind: one worker, every guarantee kept:
 *   fenced attempts and leases, durable terminal state, replayable events);
 * - Kiln with the built-in model's smallest job (64×64, one step, no previews);
 * and for Kiln: its own time per job (end to end minus the runner's time), the gap from one job's
 * last inference step to the next one's start (how long the runner waits between jobs; outputs are
 * stored and outcomes committed meanwhile), and the pickup latency of a job sent to an idle worker.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseCommandLine } from '../src/cli/command-line.js';

const USAGE = `usage: npm run bench:queue [-- --jobs 500]
  --jobs N      jobs for each measurement (default 500)
  --help        this text`;
const { values } = parseCommandLine(USAGE, { jobs: { type: 'string', default: '500' } });
// Loaded once the command line is read, so that --help does not wait for the whole service.
const [{ PgBoss }, { startKiln }, { loadConfig }, { startEmbeddedPostgres }, { jobPolicy }, { submitJobs }, { KINDS }, { imageKind }, { createLogger }, { noopKind }] =
  await Promise.all([
    import('pg-boss'),
    import('../src/app.js'),
    import('../src/config.js'),
    import('../src/db/embedded-postgres.js'),
    import('../src/jobs/queue.js'),
    import('../src/jobs/submit.js'),
    import('../src/kinds/registry.js'),
    import('../src/kinds/image/kind.js'),
    import('../src/log.js'),
    import('./noop-kind/kind.js'),
  ]);
const N = Number(values.jobs);
const log = createLogger('warn');
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-bench-queue-'));
await fs.chmod(dir, 0o755);
const pg = await startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: 56000 + (process.pid % 1000), log });
const url = await pg.url('kiln');
const config = loadConfig({ DATABASE_URL: url, KILN_DATA_DIR: dir, PORT: '0', KILN_LOG_LEVEL: 'warn', KILN_RETRY_DELAY_MS: '0', KILN_RATE_LIMIT_PER_MINUTE: '0' });
const kiln = await startKiln(config, log, { kinds: [...KINDS, noopKind] });
const policy = jobPolicy({ maxRetries: 3, retryDelayMs: 0, jobTimeoutSeconds: 660, heartbeatSeconds: 10 });
const deps = { ds: kiln.ds, boss: kiln.boss, jobPolicy: () => policy };

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1)} ms, p99 ${pct(xs, 99).toFixed(1)} ms`;
const waitDone = async (ids: string[]) => {
  for (;;) {
    const [{ n }] = await kiln.ds.query(`SELECT count(*)::int AS n FROM jobs WHERE id = ANY($1) AND status IN ('COMPLETED','FAILED','CANCELLED')`, [ids]);
    if (n === ids.length) return;
    // Seldom enough to add little to the database's load, often enough to time a drain within 2 %.
    await new Promise((r) => setTimeout(r, 25));
  }
};

/** Queues `n` jobs of a kind in one transaction, then times until the worker has run them all. */
async function drain(kind: typeof noopKind | typeof imageKind, input: Record<string, unknown>, n: number) {
  // Queued while the worker is kept busy elsewhere would be fairer still; a batch is queued in well under the time it takes to run.
  const { jobs } = await submitJobs(deps, { kind, inputs: Array.from({ length: n }, (_, i) => ({ input: { ...input, label: `job ${i}` }, options: {}, field: `inputs.${i}` })) });
  const ids = jobs.map((j) => j.id);
  const t0 = performance.now();
  await waitDone(ids);
  const seconds = (performance.now() - t0) / 1000;
  // A job's end, for the next one's start: its last inference step, since its outputs are stored and its completion commits while the next one starts.
  const rows: { gap: number | null; runner: number | null; status: string }[] = await kiln.ds.query(
    `SELECT status, (timing->>'generateMs')::float AS runner,
            extract(epoch FROM started_at - lag(last_step) OVER (ORDER BY started_at)) * 1000 AS gap
     FROM (SELECT j.*, (SELECT max(at) FROM job_events e WHERE e.job_id = j.id AND e.step = 'GENERATING') AS last_step FROM jobs j WHERE id = ANY($1)) j
     ORDER BY started_at`,
    [ids],
  );
  const failed = rows.filter((r) => r.status !== 'COMPLETED').length;
  if (failed) throw new Error(`${failed} of ${n} ${kind.name} jobs did not complete`);
  const runnerMs = rows.reduce((s, r) => s + (r.runner ?? 0), 0) / n;
  return { rate: n / seconds, perJobMs: (seconds * 1000) / n, runnerMs, gaps: rows.slice(1).map((r) => Number(r.gap)) };
}

// Warm up: the runner process starts and the built-in model loads once.
await drain(imageKind, { prompt: 'warm up', width: 64, height: 64, steps: 1, previews: false }, 3);
await drain(noopKind, {}, 3);

const noop = await drain(noopKind, {}, N);
const image = await drain(imageKind, { prompt: 'bench', width: 64, height: 64, steps: 1, previews: false }, N);

// Pickup latency on an idle worker: from the committed submission to the worker taking it.
const pickup: number[] = [];
for (let i = 0; i < Math.min(N, 100); i++) {
  const { jobs } = await submitJobs(deps, { kind: noopKind, inputs: [{ input: { label: `pickup ${i}` }, options: {}, field: 'input' }] });
  const submitted = Date.now();
  await waitDone([jobs[0]!.id]);
  const [row] = await kiln.ds.query(`SELECT extract(epoch FROM started_at) * 1000 AS started FROM jobs WHERE id = $1`, [jobs[0]!.id]);
  pickup.push(Number(row.started) - submitted);
}
await kiln.stop();

// The anchor, on the same database once Kiln is stopped: pg-boss alone, fetch one, complete, repeat.
const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false });
await boss.start();
await boss.createQueue('bench-raw');
await boss.insert('bench-raw', Array.from({ length: N }, (_, i) => ({ data: { i } })));
const t0 = performance.now();
for (let done = 0; done < N; ) {
  const [job] = await boss.fetch('bench-raw', { batchSize: 1 });
  if (!job) continue;
  await boss.complete('bench-raw', job.id);
  done++;
}
const raw = N / ((performance.now() - t0) / 1000);
await boss.stop({ graceful: false, close: true });

console.log(`${N} jobs each, one worker, one Postgres (durable commits), this machine:`);
console.log(`  raw pg-boss loop (fetch 1, complete)        ${raw.toFixed(0).padStart(5)} jobs/s  (${(1000 / raw).toFixed(2)} ms a job)`);
console.log(`  Kiln end to end, no-op pipeline            ${noop.rate.toFixed(0).padStart(5)} jobs/s  (${noop.perJobMs.toFixed(2)} ms a job; ${(noop.rate / raw * 100).toFixed(0)} % of raw)`);
console.log(`  Kiln end to end, built-in model, 64², 1 step ${image.rate.toFixed(0).padStart(3)} jobs/s  (${image.perJobMs.toFixed(2)} ms a job)`);
console.log(`  Kiln's own time per job (end to end minus the runner's): no-op ${(noop.perJobMs - noop.runnerMs).toFixed(2)} ms (runner ${noop.runnerMs.toFixed(2)} ms), built-in ${(image.perJobMs - image.runnerMs).toFixed(2)} ms (runner ${image.runnerMs.toFixed(2)} ms)`);
console.log(`  runner idle from one job's last step to the next one's start: no-op ${fmt(noop.gaps)}; built-in ${fmt(image.gaps)}`);
console.log(`  pickup latency (committed → RUNNING), idle worker: ${fmt(pickup)}`);

await pg.stop();
await fs.rm(dir, { recursive: true, force: true });
