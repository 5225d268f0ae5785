import fs from 'node:fs/promises';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { ATTEMPTS, GENERATE, PROGRESS, progressOf } from '../support/operations.js';

async function started(env: Record<string, string>) {
  const k = await startTestKiln(env);
  return { k, client: wsClient(k.url) };
}

describe('time limits on a running job', () => {
  let soft: { k: TestKiln; client: Client };
  let hard: { k: TestKiln; client: Client };
  beforeAll(async () => {
    soft = await started({ KILN_JOB_SOFT_TIMEOUT_S: '1', KILN_JOB_TIMEOUT_S: '60' });
    hard = await started({ KILN_JOB_SOFT_TIMEOUT_S: '1', KILN_JOB_TIMEOUT_S: '2' });
  });
  afterAll(async () => {
    for (const s of [soft, hard]) {
      await s?.client.dispose();
      await s?.k.stop();
    }
  });

  const run = async (s: { k: TestKiln; client: Client }, input: object) => {
    const { generate } = await ok(s.k.gql(GENERATE, { input }));
    const started = Date.now();
    const events = (await collect(s.client, PROGRESS, { id: generate.id })).map(progressOf);
    const { generation } = await ok(s.k.gql(ATTEMPTS, { id: generate.id }));
    const files = await fs.readdir(path.join(s.k.dataDir, 'storage', 'jobs', generate.id)).catch(() => []);
    return { events, generation, files, seconds: (Date.now() - started) / 1000 };
  };

  it('stops a job at the step after the soft limit, and cleans up', async () => {
    const { events, generation, files } = await run(soft, { prompt: 'too long', width: 512, height: 512, steps: 150 });
    expect(generation).toMatchObject({ status: 'FAILED', retryCount: 0, error: { code: 'TIMEOUT', retryable: false } });
    expect(generation.error.message).toMatch(/soft time limit/);
    expect(events.filter((e) => e.step === 'GENERATING').length).toBeLessThan(150);
    expect(events.at(-1)!.step).toBe('FAILED');
    expect(files).toEqual([]);
  });

  it('kills a step that runs past the hard limit, and the next job runs in a fresh runner', async () => {
    // One step here takes several seconds: far past the 1 s soft limit, it cannot stop in time.
    const { generation, seconds } = await run(hard, { prompt: 'stuck', width: 2048, height: 2048, numImages: 4, steps: 3 });
    expect(generation).toMatchObject({ status: 'FAILED', error: { code: 'TIMEOUT', retryable: false } });
    expect(generation.error.message).toMatch(/hard time limit/);
    expect(seconds).toBeLessThan(15);

    const next = await run(hard, { prompt: 'quick', steps: 2 });
    expect(next.generation.status).toBe('COMPLETED');
  });
});
