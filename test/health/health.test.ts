import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE } from '../support/operations.js';
import { freePort, spawnKiln } from '../support/processes.js';

const get = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as any };
};
// The test machine's free space must not decide these tests.
const LOW_FLOOR = { KILN_MIN_FREE_DISK_GB: '0.001' };

describe('health', () => {
  describe('of a process whose dependencies are fine', () => {
    let k: TestKiln;
    beforeAll(async () => {
      k = await startTestKiln(LOW_FLOOR);
    });
    afterAll(() => k?.stop());

    it('reports every check healthy, with the version and uptime, over HTTP and GraphQL', async () => {
      const { status, body } = await get(`${k.url}/health`);
      expect(status).toBe(200);
      expect(body).toMatchObject({ status: 'healthy', role: 'all', version: expect.any(String), uptimeSeconds: expect.any(Number) });
      expect(Object.keys(body.checks).sort()).toEqual(['accelerator', 'database', 'disk', 'queue', 'storage']);
      for (const check of Object.values(body.checks) as { status: string; message: string }[]) {
        expect(check).toMatchObject({ status: 'healthy', message: expect.any(String) });
      }
      expect(body.checks.accelerator.details).toMatchObject({ requested: ['cpu'], usable: ['cpu'] });
      const { health } = await ok(k.gql('{ health }'));
      expect(health.status).toBe('healthy');
      expect((await get(`${k.url}/health/live`)).status).toBe(200);
      expect(await get(`${k.url}/health/ready`)).toEqual({ status: 200, body: { status: 'ready' } });
    });
  });

  it('reports a worker whose execution provider is missing as degraded, and still answers 200', async () => {
    const k = await startTestKiln({ ...LOW_FLOOR, KILN_EXECUTION_PROVIDERS: 'cuda,cpu' });
    try {
      const { status, body } = await get(`${k.url}/health`);
      expect(status).toBe(200);
      expect(body.status).toBe('degraded');
      expect(body.checks.accelerator).toMatchObject({ status: 'degraded', details: { usable: ['cpu'], refused: [{ name: 'cuda' }] } });
      expect(body.checks.accelerator.message).toMatch(/cuda not available/);
    } finally {
      await k.stop();
    }
  });

  it('reports a queue whose oldest job waits too long as degraded', async () => {
    const k = await startTestKiln({ ...LOW_FLOOR, KILN_QUEUE_STALL_S: '60' }, ['--role', 'api']);
    try {
      const { generate } = await ok(k.gql(GENERATE, { input: { prompt: 'nobody runs me' } }));
      expect((await get(`${k.url}/health`)).body.checks.queue).toMatchObject({ status: 'degraded', message: expect.stringMatching(/image\.builtin job\(s\) wait: no worker is running/) });
      // A worker that says it takes the queue but takes nothing (stuck): the queue is not blocked, it stalls.
      await k.kiln.ds.query(`INSERT INTO workers (id, host, pid, kinds, queues, providers) VALUES ('stuck:1', 'stuck', 1, '{image}', '{image.builtin}', '{cpu}')`);
      expect((await get(`${k.url}/health`)).body.checks.queue.status).toBe('healthy');
      // Waiting longer than KILN_QUEUE_STALL_S: backdated, not waited for.
      await k.kiln.ds.query(`UPDATE jobs SET created_at = now() - interval '2 minutes' WHERE id = $1`, [generate.id]);
      const { body } = await get(`${k.url}/health`);
      expect(body.status).toBe('degraded');
      expect(body.checks.queue).toMatchObject({ status: 'degraded', details: { pending: 1, oldestPendingAgeSeconds: expect.any(Number) } });
      expect(body.checks.queue.details.oldestPendingAgeSeconds).toBeGreaterThan(60);
      expect(body.checks.queue.message).toMatch(/the oldest pending job has waited over 60 s/);
    } finally {
      await k.stop();
    }
  });

  describe('of a process whose database went away', () => {
    it('reports it unhealthy with 503, is not ready, and is still live', async () => {
      const k = await startTestKiln({ ...LOW_FLOOR, KILN_EMBEDDED_PG_PORT: String(await freePort()) }, ['--role', 'api'], { embeddedPostgres: true });
      try {
        const pid = Number((await fs.readFile(path.join(k.dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0]);
        process.kill(pid, 'SIGKILL');
        const health = await get(`${k.url}/health`);
        expect(health.status).toBe(503);
        expect(health.body.status).toBe('unhealthy');
        expect(health.body.checks.database.status).toBe('unhealthy');
        const ready = await get(`${k.url}/health/ready`);
        expect(ready.status).toBe(503);
        expect(ready.body.status).toBe('not ready');
        expect((await get(`${k.url}/health/live`)).status).toBe(200);
      } finally {
        await k.stop();
      }
    });
  });

  it('is served by a worker-only process on its own port, with its metrics', async () => {
    const api = await startTestKiln(LOW_FLOOR, ['--role', 'api']);
    const worker = await spawnKiln({ ...LOW_FLOOR, DATABASE_URL: api.databaseUrl!, KILN_DATA_DIR: api.dataDir }, ['--role', 'worker']);
    try {
      const { status, body } = await get(`${worker.url}/health`);
      expect(status).toBe(200);
      expect(body).toMatchObject({ role: 'worker', status: 'healthy' });
      expect(body.checks.accelerator.status).toBe('healthy');
      expect((await get(`${worker.url}/health/ready`)).status).toBe(200);
      const metrics = await fetch(`${worker.url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('kiln_jobs_total');
    } finally {
      await worker.kill('SIGTERM');
      await api.stop();
    }
  });
});
