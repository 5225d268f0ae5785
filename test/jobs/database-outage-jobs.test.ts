import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningPostgres, startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { jobPolicy } from '../../src/jobs/queue.js';
import { submitJobs } from '../../src/jobs/submit.js';
import { KINDS } from '../../src/kinds/registry.js';
import { createLogger } from '../../src/log.js';
import { echoKind } from '../support/echo-kind/kind.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { freePort } from '../support/processes.js';

/** A job that runs across a Postgres outage loses nothing: its worker stayed up, so no attempt is lost. */
describe('a job running while Postgres is down for a few seconds', () => {
  let dir: string;
  let port: number;
  let server: RunningPostgres | undefined;
  let k: TestKiln;
  const startPostgres = async () => {
    server = await startEmbeddedPostgres({ dir: path.join(dir, 'data'), port, log: createLogger('silent') });
    return server.url('kiln');
  };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-outage-jobs-'));
    await fs.chmod(dir, 0o755);
    port = await freePort();
    const url = await startPostgres();
    k = await startTestKiln({ DATABASE_URL: url }, [], { kinds: [...KINDS, echoKind] });
  });
  afterAll(async () => {
    await k?.stop();
    await server?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('completes in its first attempt, with every step it reported', async () => {
    const policy = jobPolicy({ maxRetries: 2, retryDelayMs: 0, jobTimeoutSeconds: 120, heartbeatSeconds: 10 });
    const { jobs } = await submitJobs(
      { ds: k.kiln.ds, boss: k.kiln.boss, jobPolicy: () => policy },
      { kind: echoKind, inputs: [{ input: { text: 'outage', units: 100, stepMs: 120 }, options: {}, field: 'input' }] },
    );
    const id = jobs[0]!.id;
    await expect.poll(async () => (await k.kiln.ds.query('SELECT coalesce(max(step_index), 0) AS n FROM job_events WHERE job_id = $1', [id]))[0].n, { timeout: 20_000 }).toBeGreaterThan(5);
    // Down for 5 s, while the runner goes on with the job.
    await server!.stop();
    await new Promise((r) => setTimeout(r, 5_000));
    await startPostgres();
    await expect.poll(async () => (await k.kiln.ds.query('SELECT status FROM jobs WHERE id = $1', [id]).catch(() => []))[0]?.status, { timeout: 60_000, interval: 250 }).toBe('COMPLETED');
    const attempts = await k.kiln.ds.query('SELECT outcome FROM job_attempts WHERE job_id = $1', [id]);
    expect(attempts).toEqual([{ outcome: 'COMPLETED' }]);
    const steps = await k.kiln.ds.query(`SELECT step_index FROM job_events WHERE job_id = $1 AND step = 'GENERATING' ORDER BY seq`, [id]);
    expect(steps.map((s: { step_index: number }) => s.step_index)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });
});
