import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE, PROGRESS } from '../support/operations.js';

describe('a worker with KILN_WORKER_CONCURRENCY=2', () => {
  let k: TestKiln;
  beforeAll(async () => {
    k = await startTestKiln({ KILN_WORKER_CONCURRENCY: '2' });
  });
  afterAll(() => k?.stop());

  it('runs two jobs at the same time, each in its own runner', async () => {
    const input = { prompt: 'side by side', width: 512, height: 512, steps: 12 };
    const ids = await Promise.all([0, 1].map(async () => (await ok(k.gql(GENERATE, { input }))).generate.id as string));
    const client = wsClient(k.url);
    await Promise.all(ids.map((id) => collect(client, PROGRESS, { id })));
    await client.dispose();
    const rows: { started_at: Date; completed_at: Date }[] = await k.kiln.ds.query(
      `SELECT started_at, completed_at FROM jobs WHERE id = ANY($1) ORDER BY started_at`,
      [ids],
    );
    // The second started before the first ended.
    expect(rows[1]!.started_at.getTime()).toBeLessThan(rows[0]!.completed_at.getTime());
    const workers: { worker: string }[] = await k.kiln.ds.query(`SELECT worker FROM job_attempts WHERE job_id = ANY($1)`, [ids]);
    expect(workers).toHaveLength(2);
  });
});
