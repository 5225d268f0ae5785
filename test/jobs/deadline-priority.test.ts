import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { ATTEMPTS, GENERATE, PROGRESS, progressOf } from '../support/operations.js';

describe('deadlines and priorities', () => {
  let api: TestKiln;
  let client: Client;
  beforeAll(async () => {
    // The API's reconciler is what cancels missed deadlines while no worker looks at the job.
    api = await startTestKiln({ KILN_RECONCILE_INTERVAL_S: '1' }, ['--role', 'api']);
    client = wsClient(api.url);
  });
  afterAll(async () => {
    await client?.dispose();
    await api?.stop();
  });

  const backdate = (id: string) => api.kiln.ds.query(`UPDATE jobs SET deadline_at = now() - interval '1 second' WHERE id = $1`, [id]);
  const worker = () => startTestKiln({ DATABASE_URL: api.databaseUrl!, KILN_DATA_DIR: api.dataDir, KILN_RECONCILE_INTERVAL_S: '3600' }, ['--role', 'worker']);

  it('cancels a generation that was not started before its deadline, without running it', async () => {
    const { generate } = await ok(api.gql(GENERATE, { input: { prompt: 'too late', deadlineSeconds: 3600 } }));
    await backdate(generate.id);
    const events = (await collect(client, PROGRESS, { id: generate.id })).map(progressOf);
    expect(events.map((e) => e.step)).toEqual(['QUEUED', 'CANCELLED']);
    expect(events[1]!.message).toMatch(/deadline/);
    const { generation } = await ok(api.gql(ATTEMPTS, { id: generate.id }));
    expect(generation).toMatchObject({ status: 'CANCELLED', error: { code: 'DEADLINE_EXCEEDED' }, attempts: [] });
  });

  it('runs higher priorities first', async () => {
    const ids: Record<number, string> = {};
    for (const priority of [0, 10, -5, 5]) ids[priority] = (await ok(api.gql(GENERATE, { input: { prompt: `p${priority}`, steps: 1, priority } }))).generate.id;
    const w = await worker();
    for (const id of Object.values(ids)) await collect(client, PROGRESS, { id });
    await w.stop();
    const rows: { id: string }[] = await api.kiln.ds.query(`SELECT id FROM jobs WHERE id = ANY($1) ORDER BY started_at`, [Object.values(ids)]);
    expect(rows.map((r) => r.id)).toEqual([ids[10], ids[5], ids[0], ids[-5]]);
  });
});

describe('a worker taking a job whose deadline passed', () => {
  it('cancels it instead of running it', async () => {
    // No periodic reconciler anywhere: only the worker can notice the deadline.
    const env = { KILN_RECONCILE_INTERVAL_S: '3600' };
    const api = await startTestKiln(env, ['--role', 'api']);
    const client = wsClient(api.url);
    try {
      const { generate } = await ok(api.gql(GENERATE, { input: { prompt: 'too late', deadlineSeconds: 3600 } }));
      await api.kiln.ds.query(`UPDATE jobs SET deadline_at = now() - interval '1 second' WHERE id = $1`, [generate.id]);
      const worker = await startTestKiln({ ...env, DATABASE_URL: api.databaseUrl!, KILN_DATA_DIR: api.dataDir }, ['--role', 'worker']);
      const events = (await collect(client, PROGRESS, { id: generate.id })).map(progressOf);
      await worker.stop();
      expect(events.map((e) => e.step)).toEqual(['QUEUED', 'CANCELLED']);
      expect((await api.kiln.ds.query(`SELECT state FROM pgboss.job WHERE id = $1`, [generate.id]))[0].state).toBe('cancelled');
      expect((await ok(api.gql(ATTEMPTS, { id: generate.id }))).generation).toMatchObject({ error: { code: 'DEADLINE_EXCEEDED' }, attempts: [] });
    } finally {
      await client.dispose();
      await api.stop();
    }
  });
});
