import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE, GENERATION } from '../support/operations.js';

describe('an upgrade from the Kiln that had one queue', () => {
  let api: TestKiln;
  let worker: TestKiln | undefined;
  beforeAll(async () => {
    api = await startTestKiln({ KILN_RECONCILE_INTERVAL_S: '1' }, ['--role', 'api']);
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.stop();
  });

  it('runs the jobs still waiting in the old queue, moved to their kind\'s queue', async () => {
    const { generate } = await ok(api.gql(GENERATE, { input: { prompt: 'queued before the upgrade', steps: 2 } }));
    // As the older Kiln left it: the job in `kiln-generate`, with a `{ generationId }` payload.
    const boss = api.kiln.boss;
    await boss.deleteJob('image.builtin', generate.id);
    await boss.createQueue('kiln-generate');
    await boss.send('kiln-generate', { generationId: generate.id }, { id: generate.id, retryLimit: 3 });

    worker = await startTestKiln({ DATABASE_URL: api.databaseUrl!, KILN_DATA_DIR: api.dataDir }, ['--role', 'worker']);
    await expect.poll(async () => (await ok(api.gql(GENERATION, { id: generate.id }))).generation.status, { timeout: 30_000 }).toBe('COMPLETED');
    expect(await boss.findJobs('kiln-generate', { queued: true })).toEqual([]);
  });
});
