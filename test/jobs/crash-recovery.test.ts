import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, follow, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { ATTEMPTS, GENERATE, PROGRESS, type ProgressEvent, progressOf } from '../support/operations.js';
import { type KilnProcess, spawnKiln } from '../support/processes.js';

// Long enough to be caught mid-run, short enough for the survivor to finish quickly.
const JOB = { prompt: 'survives its worker', width: 256, height: 256, steps: 40, seed: 11 };

describe('workers that die or stall mid-job', () => {
  let api: TestKiln;
  let client: Client;
  const processes: KilnProcess[] = [];
  const others: TestKiln[] = [];

  beforeAll(async () => {
    api = await startTestKiln({ KILN_RECONCILE_INTERVAL_S: '1' }, ['--role', 'api']);
    client = wsClient(api.url);
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.kill('SIGKILL')));
    await Promise.all(others.map((k) => k.stop()));
    await client?.dispose();
    await api?.stop();
  });

  const workerEnv = () => ({ DATABASE_URL: api.databaseUrl!, KILN_DATA_DIR: api.dataDir, KILN_RETRY_DELAY_MS: '0' });
  const spawnWorker = async () => {
    const p = await spawnKiln(workerEnv(), ['--role', 'worker']);
    processes.push(p);
    return p;
  };
  const startWorker = async () => {
    const k = await startTestKiln(workerEnv(), ['--role', 'worker']);
    others.push(k);
    return k;
  };
  /** Each test sets up its own workers: none from an earlier test may take its job. */
  const stopWorkers = async () => {
    await Promise.all(processes.splice(0).map((p) => p.kill('SIGKILL')));
    await Promise.all(others.splice(0).map((k) => k.stop()));
  };
  const running = async () => (await api.kiln.ds.query(`SELECT count(*)::int AS n FROM jobs WHERE status = 'RUNNING'`))[0].n;

  it('hands a job whose worker was killed (SIGKILL) to another worker, which completes it', async () => {
    await stopWorkers();
    const first = await spawnWorker();
    const { generate } = await ok(api.gql(GENERATE, { input: JOB }));
    const watch = follow<{ generationProgress: ProgressEvent }>(client, PROGRESS, { id: generate.id });
    await watch.until((v) => progressOf(v).stepIndex === 3);
    await first.kill('SIGKILL');
    const killedAt = Date.now();
    await startWorker();

    const events = (await watch.done).map(progressOf);
    const { generation } = await ok(api.gql(ATTEMPTS, { id: generate.id }));
    expect(generation).toMatchObject({ status: 'COMPLETED', retryCount: 1 });
    expect(generation.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['WORKER_LOST', 'COMPLETED']);
    expect(generation.attempts[0].error).toMatchObject({ code: 'WORKER_LOST', retryable: true });
    // Handed on within the documented bound: KILN_HEARTBEAT_S (10) + 3 s.
    const handedOnMs = Date.parse(generation.attempts[1].startedAt) - killedAt;
    console.log(`a SIGKILLed worker's job started again on another worker after ${handedOnMs} ms`);
    expect(handedOnMs).toBeLessThanOrEqual(13_000);
    const second = events.filter((e) => e.attempt === 2).map((e) => (e.step === 'GENERATING' ? `G${e.stepIndex}` : e.step));
    expect(second).toEqual(['LOADING_MODEL', 'ENCODING_PROMPT', ...Array.from({ length: 40 }, (_, i) => `G${i + 1}`), 'SAVING', 'COMPLETED']);
    expect(await running()).toBe(0);
  });

  it('refuses every write from a worker that was paused (SIGSTOP) past its lease and then resumed', async () => {
    await stopWorkers();
    const stalled = await spawnWorker();
    const { generate } = await ok(api.gql(GENERATE, { input: { ...JOB, seed: 12 } }));
    const watch = follow<{ generationProgress: ProgressEvent }>(client, PROGRESS, { id: generate.id });
    await watch.until((v) => progressOf(v).stepIndex === 3);
    stalled.child.kill('SIGSTOP');
    await startWorker();
    // Resume the stalled worker once the job is someone else's.
    await watch.until((v) => progressOf(v).attempt === 2);
    stalled.child.kill('SIGCONT');

    const events = (await watch.done).map(progressOf);
    await stalled.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('refused'));
    const { generation } = await ok(api.gql(ATTEMPTS, { id: generate.id }));
    expect(generation.status).toBe('COMPLETED');
    // Nothing of attempt 1 landed after attempt 2 began.
    const firstOfSecond = events.findIndex((e) => e.attempt === 2);
    expect(events.slice(firstOfSecond).every((e) => e.attempt === 2)).toBe(true);
    const rows = await api.kiln.ds.query(`SELECT attempt FROM job_events WHERE job_id = $1 ORDER BY seq`, [generate.id]);
    expect(rows.map((r: { attempt: number }) => r.attempt)).toEqual(events.map((e) => e.attempt));
    const [image] = await api.kiln.ds.query(`SELECT storage_key FROM job_outputs WHERE job_id = $1`, [generate.id]);
    const [{ lease }] = await api.kiln.ds.query(`SELECT lease FROM job_attempts WHERE job_id = $1 AND attempt = 2`, [generate.id]);
    expect(image.storage_key).toBe(`jobs/${generate.id}/${lease}/0.png`);
    expect(await running()).toBe(0);
  });

  it('settles, at start, generations left RUNNING by a worker that is gone, and removes what it had written', async () => {
    await stopWorkers();
    const retried = await ok(api.gql(GENERATE, { input: { prompt: 'retried', steps: 1 } }));
    const spent = await ok(api.gql(GENERATE, { input: { prompt: 'spent', steps: 1 } }));
    // As a dead worker leaves them: RUNNING, lease long expired; pg-boss has already moved the
    // jobs on (one back to retry, one failed with no retries left).
    for (const [id, state] of [[retried.generate.id, 'retry'], [spent.generate.id, 'failed']] as const) {
      await api.kiln.ds.query(
        `UPDATE jobs SET status = 'RUNNING', lease = 1, lease_expires_at = now() - interval '1 minute', started_at = now() WHERE id = $1`,
        [id],
      );
      await api.kiln.ds.query(`INSERT INTO job_attempts (job_id, lease, attempt, worker) VALUES ($1, 1, 1, 'gone:1')`, [id]);
      await api.kiln.ds.query(`UPDATE pgboss.job SET state = $2, retry_count = 1 WHERE id = $1`, [id, state]);
      // What a worker killed while saving leaves: a file of its attempt's (lease 1's) folder.
      await api.kiln.storage.put(`jobs/${id}/1/0.png`, new Uint8Array([1, 2, 3]));
    }
    await startWorker();
    const retriedEvents = (await collect(client, PROGRESS, { id: retried.generate.id })).map(progressOf);
    expect(retriedEvents.at(-1)!.step).toBe('COMPLETED');
    const spentEvents = (await collect(client, PROGRESS, { id: spent.generate.id })).map(progressOf);
    expect(spentEvents.at(-1)).toMatchObject({ step: 'FAILED', status: 'FAILED' });
    const { generation } = await ok(api.gql(ATTEMPTS, { id: spent.generate.id }));
    expect(generation).toMatchObject({ error: { code: 'WORKER_LOST' }, attempts: [{ outcome: 'WORKER_LOST' }] });
    expect(await running()).toBe(0);
    for (const id of [retried.generate.id, spent.generate.id]) {
      await expect.poll(() => api.kiln.storage.stat(`jobs/${id}/1/0.png`)).toBeUndefined();
    }
    const [{ storage_key: kept }] = await api.kiln.ds.query('SELECT storage_key FROM job_outputs WHERE job_id = $1', [retried.generate.id]);
    expect(await api.kiln.storage.stat(kept)).toBeDefined();
  });
});
