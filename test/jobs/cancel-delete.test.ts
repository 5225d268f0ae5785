import fs from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Client } from 'graphql-ws';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, follow, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { CANCEL, DELETE, GENERATE, GENERATION, PROGRESS, type ProgressEvent, progressOf } from '../support/operations.js';

// Slow enough on any machine to act on it between its steps.
const SLOW = { prompt: 'a long one', width: 512, height: 512, steps: 150 };

describe('cancelling and deleting generations', () => {
  let k: TestKiln;
  let clients: Client[];
  beforeAll(async () => {
    k = await startTestKiln();
    clients = [wsClient(k.url), wsClient(k.url)];
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await k?.stop();
  });

  const jobState = async (id: string) => (await k.kiln.ds.query(`SELECT state FROM pgboss.job WHERE id = $1`, [id]))[0]?.state;
  const filesOf = async (id: string) =>
    (await fs.readdir(path.join(k.dataDir, 'storage', 'jobs', id), { recursive: true }).catch(() => [] as string[])).filter((f) =>
      f.toString().endsWith('.png'),
    );

  it('cancels a running generation at the next step: every subscriber gets CANCELLED, no file remains', async () => {
    const { generate } = await ok(k.gql(GENERATE, { input: SLOW }));
    const watchers = clients.map((c) => follow<{ generationProgress: ProgressEvent }>(c, PROGRESS, { id: generate.id }));
    await watchers[0]!.until((v) => progressOf(v).stepIndex === 2);
    const stepsBefore = watchers[0]!.values.filter((v) => progressOf(v).step === 'GENERATING').length;

    const { cancelGeneration } = await ok(k.gql(CANCEL, { id: generate.id }));
    expect(cancelGeneration).toMatchObject({ status: 'RUNNING', cancelRequested: true });

    for (const w of watchers) {
      const events = (await w.done).map(progressOf);
      expect(events.at(-1)).toMatchObject({ step: 'CANCELLED', status: 'CANCELLED' });
      // It stopped within one step of the request.
      expect(events.filter((e) => e.step === 'GENERATING').length).toBeLessThanOrEqual(stepsBefore + 2);
      expect(events.some((e) => e.step === 'SAVING')).toBe(false);
    }
    const { generation } = await ok(k.gql(GENERATION, { id: generate.id }));
    expect(generation).toMatchObject({ status: 'CANCELLED', images: [] });
    expect(await filesOf(generate.id)).toEqual([]);
    expect(await jobState(generate.id)).toBe('cancelled');

    // The worker and its loaded model carry on with the next job.
    const next = await ok(k.gql(GENERATE, { input: { prompt: 'after the cancel', steps: 2 } }));
    const events = (await collect(clients[0]!, PROGRESS, { id: next.generate.id })).map(progressOf);
    expect(events.at(-1)!.step).toBe('COMPLETED');
  });

  it('cancels a pending generation at once and takes its job off the queue', async () => {
    const blocker = await ok(k.gql(GENERATE, { input: SLOW }));
    const pending = await ok(k.gql(GENERATE, { input: { prompt: 'never runs' } }));
    const { cancelGeneration } = await ok(k.gql(CANCEL, { id: pending.generate.id }));
    expect(cancelGeneration).toMatchObject({ status: 'CANCELLED', cancelRequested: false });
    const events = (await collect(clients[0]!, PROGRESS, { id: pending.generate.id })).map(progressOf);
    expect(events.map((e) => e.step)).toEqual(['QUEUED', 'CANCELLED']);
    expect(await jobState(pending.generate.id)).toBe('cancelled');
    await ok(k.gql(CANCEL, { id: blocker.generate.id }));
    await collect(clients[0]!, PROGRESS, { id: blocker.generate.id });
  });

  it('refuses to cancel what is over (CONFLICT) or unknown (NOT_FOUND)', async () => {
    const done = await ok(k.gql(GENERATE, { input: { prompt: 'quick', steps: 1 } }));
    await collect(clients[0]!, PROGRESS, { id: done.generate.id });
    expect((await k.gql(CANCEL, { id: done.generate.id })).errors![0]!.extensions!.code).toBe('CONFLICT');
    expect((await k.gql(CANCEL, { id: crypto.randomUUID() })).errors![0]!.extensions!.code).toBe('NOT_FOUND');
    expect((await k.gql(CANCEL, { id: 'nope' })).errors![0]!.extensions!.code).toBe('NOT_FOUND');
  });

  it('deletes a generation with its events, images and files', async () => {
    const { generate } = await ok(k.gql(GENERATE, { input: { prompt: 'to delete', steps: 2, numImages: 2 } }));
    await collect(clients[0]!, PROGRESS, { id: generate.id });
    expect(await filesOf(generate.id)).toHaveLength(2);
    expect((await ok(k.gql(DELETE, { id: generate.id }))).deleteGeneration).toBe(generate.id);
    expect((await ok(k.gql(GENERATION, { id: generate.id }))).generation).toBeNull();
    const [left] = await k.kiln.ds.query(
      `SELECT (SELECT count(*)::int FROM job_events WHERE job_id = $1) AS events,
              (SELECT count(*)::int FROM job_outputs WHERE job_id = $1) AS images`,
      [generate.id],
    );
    expect(left).toEqual({ events: 0, images: 0 });
    expect(await filesOf(generate.id)).toEqual([]);
    expect((await k.gql(DELETE, { id: generate.id })).errors![0]!.extensions!.code).toBe('NOT_FOUND');
  });

  it('stops a running generation it deletes, and ends the streams watching it', async () => {
    const { generate } = await ok(k.gql(GENERATE, { input: SLOW }));
    const watcher = follow<{ generationProgress: ProgressEvent }>(clients[1]!, PROGRESS, { id: generate.id });
    await watcher.until((v) => progressOf(v).stepIndex === 1);
    await ok(k.gql(DELETE, { id: generate.id }));
    await watcher.done; // completes: the generation is gone
    // The worker stopped and is free: the next job runs to the end.
    const next = await ok(k.gql(GENERATE, { input: { prompt: 'next', steps: 2 } }));
    expect((await collect(clients[0]!, PROGRESS, { id: next.generate.id })).map(progressOf).at(-1)!.step).toBe('COMPLETED');
    expect(await filesOf(generate.id)).toEqual([]);
  });
});

describe('cancelling a job while a worker takes it', () => {
  // No worker: the test plays the claim itself, so that its locks come in the order a claim takes them.
  let k: TestKiln;
  beforeAll(async () => {
    k = await startTestKiln({}, ['--role', 'api']);
  });
  afterAll(async () => {
    await k?.stop();
  });

  it('runs the cancel again when Postgres ends it to break a deadlock with the claim, instead of an internal error', async () => {
    const { generate } = await ok(k.gql(GENERATE, { input: { prompt: 'claimed meanwhile' } }));
    const claim = new pg.Client({ connectionString: k.databaseUrl });
    await claim.connect();
    try {
      // A claim takes the pg-boss row first (pg-boss picks the job), then the job's row. Its own
      // deadlock check is put off, so that the cancel's (after 1 s of waiting) is the one to find the cycle.
      await claim.query('BEGIN');
      await claim.query(`SET LOCAL deadlock_timeout = '20s'`);
      await claim.query(`UPDATE pgboss.job SET state = 'active', started_on = now() WHERE id = $1`, [generate.id]);
      expect(generate.id).toMatch(/^[0-9a-f-]{36}$/);
      const [answer] = await Promise.all([
        k.gql(CANCEL, { id: generate.id }),
        (async () => {
          // Once the cancel holds the job's row and waits for the pg-boss one, the claim asks for the
          // job's row: the cycle is closed within milliseconds of the cancel's wait, in the server,
          // whatever the load on this process. Postgres ends the cancel's transaction; it runs again.
          await claim.query(`DO $$
            BEGIN
              FOR i IN 1..4000 LOOP
                -- Activity is read once a transaction unless the snapshot is cleared.
                PERFORM pg_stat_clear_snapshot();
                EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() AND pid <> pg_backend_pid());
                PERFORM pg_sleep(0.005);
              END LOOP;
              UPDATE jobs SET status = 'RUNNING', lease = lease + 1, started_at = now() WHERE id = '${generate.id}';
            END $$`);
          await claim.query('COMMIT');
        })(),
      ]);
      expect(answer.errors).toBeUndefined();
      // Run again after the claim: the job is running now, so its worker is asked to stop.
      expect(answer.data!.cancelGeneration).toMatchObject({ status: 'RUNNING', cancelRequested: true });
    } finally {
      await claim.end();
    }
  });
});
