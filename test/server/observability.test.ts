import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/database.js';
import { follow, ok, wsClient } from '../support/graphql.js';
import { GENERATE, PROGRESS, type ProgressEvent, progressOf } from '../support/operations.js';
import { type KilnProcess, spawnKiln } from '../support/processes.js';

/** Prometheus text format: `name{labels} value` lines and `#` comments, nothing else. */
function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (-?(?:[\d.]+(?:e[+-]?\d+)?|NaN|\+Inf|-Inf))$/.exec(line);
    if (!m) throw new Error(`not a metrics line: ${line}`);
    values.set(m[1]!, Number(m[2]));
  }
  return values;
}

describe('a running Kiln, seen from outside', () => {
  let kiln: KilnProcess;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-observed-'));
    kiln = await spawnKiln({ DATABASE_URL: await createTestDatabase(), KILN_DATA_DIR: dataDir });
  });
  afterAll(async () => {
    await kiln?.kill('SIGTERM');
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('echoes request ids and logs each operation and each worker step with the ids that tie them together', async () => {
    const res = await fetch(`${kiln.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-from-client-1' },
      body: JSON.stringify({ query: GENERATE, operationName: 'Generate', variables: { input: { prompt: 'logged', steps: 2 } } }),
    });
    expect(res.headers.get('x-request-id')).toBe('req-from-client-1');
    const { data } = (await res.json()) as { data: { generate: { id: string } } };
    const made = await fetch(`${kiln.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ queueStats { pending } }"}' });
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

    const operation = await kiln.waitForLog((l) => l.msg === 'graphql operation' && l.requestId === 'req-from-client-1');
    expect(operation).toMatchObject({ operation: 'Generate', errors: 0, level: 30 });
    const done = await kiln.waitForLog((l) => l.msg === 'job completed' && l.jobId === data.generate.id);
    expect(done).toMatchObject({ attempt: 1, timing: expect.any(Object) });
    const workerLines = kiln.logs.filter((l) => l.component === 'worker' && l.jobId === data.generate.id);
    expect(workerLines.length).toBeGreaterThanOrEqual(2);
  });

  it('serves Prometheus metrics that count a finished job', async () => {
    const { generate } = await ok(kiln.gql(GENERATE, { input: { prompt: 'counted', steps: 2 } }));
    const client = wsClient(kiln.url!);
    const watching = follow(client, PROGRESS, { id: generate.id });
    await watching.done;
    // One subscription open while scraping.
    const long = (await ok(kiln.gql(GENERATE, { input: { prompt: 'open', steps: 150, width: 1024, height: 1024 } }))).generate.id;
    const open = follow<{ generationProgress: ProgressEvent }>(client, PROGRESS, { id: long });
    await open.until((v) => progressOf(v).step === 'QUEUED');
    const res = await fetch(`${kiln.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const metrics = parseMetrics(await res.text());
    expect(metrics.get('kiln_jobs_total{kind="image",outcome="completed"}')).toBeGreaterThanOrEqual(1);
    expect(metrics.get('kiln_step_duration_seconds_count{kind="image",step="total"}')).toBeGreaterThanOrEqual(1);
    expect(metrics.get('kiln_step_duration_seconds_count{kind="image",step="generate"}')).toBeGreaterThanOrEqual(1);
    expect(metrics.get('kiln_jobs{status="COMPLETED"}')).toBeGreaterThanOrEqual(1);
    expect(metrics.has('kiln_queue_depth')).toBe(true);
    expect(metrics.has('kiln_queue_oldest_pending_age_seconds')).toBe(true);
    const sessions = (metrics.get('kiln_cache_requests_total{cache="session",result="hit"}') ?? 0) + (metrics.get('kiln_cache_requests_total{cache="session",result="miss"}') ?? 0);
    expect(sessions).toBeGreaterThanOrEqual(1);
    expect(metrics.get('kiln_session_cache_bytes')).toBeGreaterThan(0);
    expect(metrics.get('kiln_subscriptions')).toBeGreaterThanOrEqual(1);
    expect(metrics.get('kiln_rate_limited_total')).toBe(0);
    // Process metrics under one prefix, not two.
    expect(metrics.get('kiln_process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(metrics.has('kiln_nodejs_heap_size_used_bytes')).toBe(true);
    expect([...metrics.keys()].filter((name) => name.includes('process_process'))).toEqual([]);
    await ok(kiln.gql(`mutation($id: ID!) { cancelGeneration(id: $id) { id } }`, { id: long }));
    await open.done;
    await client.dispose();
    // A cancel is an expected outcome: one info line with its reason, no stack trace.
    const ended = await kiln.waitForLog((l) => l.msg === 'job attempt ended' && l.jobId === long);
    expect(ended).toMatchObject({ level: 30, code: 'CANCELLED', outcome: 'cancelled', reason: 'Cancelled by request' });
    expect(JSON.stringify(ended)).not.toMatch(/stack|\n\s+at /);
  });
});

describe('start-up and stopping', () => {
  it('refuses a bad setting at start with one line that names it', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: path.resolve(import.meta.dirname, '../..'),
      env: { PATH: process.env.PATH, KILN_WORKER_CONCURRENCY: 'lots' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(78);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/KILN_WORKER_CONCURRENCY="lots"/);
  });

  it('stops at once on a second signal while the first waits for a job', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-signals-'));
    const kiln = await spawnKiln({ DATABASE_URL: await createTestDatabase(), KILN_DATA_DIR: dataDir, KILN_SHUTDOWN_GRACE_S: '600' });
    try {
      const { generate } = await ok(kiln.gql(GENERATE, { input: { prompt: 'long', width: 1024, height: 1024, steps: 150 } }));
      const client = wsClient(kiln.url!);
      await follow<{ generationProgress: ProgressEvent }>(client, PROGRESS, { id: generate.id }).until((v) => progressOf(v).step === 'GENERATING');
      await client.dispose();
      kiln.child.kill('SIGTERM');
      await kiln.waitForLog((l) => l.msg === 'stopping');
      const started = Date.now();
      expect(await kiln.kill('SIGTERM')).toBe(130);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});

