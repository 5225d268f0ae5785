import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { follow, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { ATTEMPTS, GENERATE, PROGRESS, type ProgressEvent, progressOf } from '../support/operations.js';
import { spawnKiln } from '../support/processes.js';

describe('a worker told to stop (SIGTERM) during a job', () => {
  let api: TestKiln;
  let client: Client;
  beforeAll(async () => {
    api = await startTestKiln({}, ['--role', 'api']);
    client = wsClient(api.url);
  });
  afterAll(async () => {
    await client?.dispose();
    await api?.stop();
  });
  const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: api.databaseUrl!, KILN_DATA_DIR: api.dataDir, ...extra });

  it('finishes the job in hand within its grace period, then exits cleanly', async () => {
    const worker = await spawnKiln(env(), ['--role', 'worker']);
    const { generate } = await ok(api.gql(GENERATE, { input: { prompt: 'finish me', steps: 30 } }));
    const watch = follow<{ generationProgress: ProgressEvent }>(client, PROGRESS, { id: generate.id });
    await watch.until((v) => progressOf(v).stepIndex === 2);
    const exit = worker.kill('SIGTERM');
    const events = (await watch.done).map(progressOf);
    expect(events.at(-1)!.step).toBe('COMPLETED');
    expect(await exit).toBe(0);
    expect((await ok(api.gql(ATTEMPTS, { id: generate.id }))).generation.attempts).toHaveLength(1);
  });

  it('hands the job back to the queue when the grace period runs out, for another worker to finish', async () => {
    const worker = await spawnKiln(env({ KILN_SHUTDOWN_GRACE_S: '0' }), ['--role', 'worker']);
    const { generate } = await ok(api.gql(GENERATE, { input: { prompt: 'hand me back', width: 512, height: 512, steps: 60 } }));
    const watch = follow<{ generationProgress: ProgressEvent }>(client, PROGRESS, { id: generate.id });
    await watch.until((v) => progressOf(v).stepIndex === 2);
    expect(await worker.kill('SIGTERM')).toBe(0);
    const next = await startTestKiln(env(), ['--role', 'worker']);
    try {
      const events = (await watch.done).map(progressOf);
      expect(events.at(-1)).toMatchObject({ step: 'COMPLETED', attempt: 2 });
      const { generation } = await ok(api.gql(ATTEMPTS, { id: generate.id }));
      expect(generation.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['RETRY', 'COMPLETED']);
      expect(generation.attempts[0].error.code).toBe('WORKER_SHUTDOWN');
    } finally {
      await next.stop();
    }
  });
});
