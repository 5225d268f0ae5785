import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { audioKind } from '../../src/kinds/audio/kind.js';
import { imageKind } from '../../src/kinds/image/kind.js';
import { ok } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE, GENERATION } from '../support/operations.js';

const WORKERS = /* GraphQL */ `{ workers { id host pid kinds queues providers currentJobs { id } modelsLoaded { name } lastHeartbeat } }`;
const BLOCKED = /* GraphQL */ `{ queueStats { pending blocked { queue kind pending reason } } }`;

describe('which worker takes which job', () => {
  let api: TestKiln;
  beforeAll(async () => {
    api = await startTestKiln({}, ['--role', 'api']);
  });
  afterAll(() => api?.stop());

  const worker = (env: Record<string, string>) => startTestKiln({ DATABASE_URL: api.databaseUrl!, KILN_DATA_DIR: api.dataDir, ...env }, ['--role', 'worker']);

  it('leaves a job pending, and says why, while no running worker takes its queue; a worker that does runs it', async () => {
    const { generate } = await ok(api.gql(GENERATE, { input: { prompt: 'waiting for the right worker', steps: 2 } }));
    expect((await ok(api.gql(BLOCKED))).queueStats.blocked).toEqual([
      { queue: 'image.builtin', kind: 'image', pending: 1, reason: 'no worker is running' },
    ]);

    // A worker that runs Stable Diffusion only: it does not take the built-in model's job.
    const sdOnly = await worker({ KILN_WORKER_KINDS: 'image', KILN_WORKER_PIPELINES: 'stable-diffusion-onnx' });
    try {
      const { workers } = await ok(api.gql(WORKERS));
      expect(workers).toEqual([expect.objectContaining({ kinds: ['image'], queues: ['image.stable-diffusion-onnx'], providers: ['cpu'], currentJobs: [] })]);
      const { queueStats } = await ok(api.gql(BLOCKED));
      expect(queueStats.blocked).toHaveLength(1);
      expect(queueStats.blocked[0].reason).toMatch(/none of the 1 running worker\(s\) takes image\.builtin jobs \(they take image\.stable-diffusion-onnx\)/);
      const health = (await (await fetch(`${api.url}/health`)).json()) as { checks: { queue: { status: string; message: string } } };
      expect(health.checks.queue).toMatchObject({ status: 'degraded', message: expect.stringContaining('1 image.builtin job(s) wait') });
      expect((await ok(api.gql(GENERATION, { id: generate.id }))).generation.status).toBe('PENDING');
    } finally {
      await sdOnly.stop();
    }
    // Stopped cleanly, it is gone from the list at once.
    expect((await ok(api.gql(WORKERS))).workers).toEqual([]);

    const any = await worker({});
    try {
      await expect.poll(async () => (await ok(api.gql(GENERATION, { id: generate.id }))).generation.status, { timeout: 30_000 }).toBe('COMPLETED');
      const { workers } = await ok(api.gql(WORKERS));
      // Every pipeline and the built-in trainer run on the CPU: it takes every image and audio queue, builtin trainings and installs.
      expect(workers[0].queues).toEqual([...imageKind.queues, ...audioKind.queues, 'training.builtin', 'install']);
      await expect.poll(async () => (await ok(api.gql(WORKERS))).workers[0].modelsLoaded, { timeout: 15_000 }).toEqual([{ name: 'kiln-builtin' }]);
      expect((await ok(api.gql(BLOCKED))).queueStats).toEqual({ pending: 0, blocked: [] });
    } finally {
      await any.stop();
    }
  });

  it('refuses to start a worker whose KILN_WORKER_KINDS names a kind Kiln does not have', async () => {
    await expect(worker({ KILN_WORKER_KINDS: 'image,knitting' })).rejects.toThrow(/KILN_WORKER_KINDS: no kind named knitting \(Kiln runs image/);
  });
});
