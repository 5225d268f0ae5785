import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FALLBACK } from '../../src/kinds/image/estimate.js';
import { ok } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE_BATCH, GENERATE_WITH_KEY } from '../support/operations.js';

describe('batches and idempotent submits', () => {
  let k: TestKiln;
  const counts = async () => {
    const [row] = await k.kiln.ds.query(
      `SELECT (SELECT count(*)::int FROM jobs) AS generations, (SELECT count(*)::int FROM pgboss.job WHERE name LIKE 'image.%') AS jobs`,
    );
    return row as { generations: number; jobs: number };
  };

  // API only: nothing runs, so what is written stays as written.
  beforeAll(async () => {
    k = await startTestKiln({ KILN_MAX_BATCH: '5' }, ['--role', 'api']);
  });
  afterAll(() => k?.stop());

  it('writes a whole batch, rows and jobs, in one go', async () => {
    const before = await counts();
    const { generateBatch } = await ok(k.gql(GENERATE_BATCH, { inputs: [{ prompt: 'one' }, { prompt: 'two', seed: 9 }, { prompt: 'three' }] }));
    expect(generateBatch.generations).toHaveLength(3);
    expect(generateBatch.generations.every((g: { status: string }) => g.status === 'PENDING')).toBe(true);
    expect(generateBatch.generations[1].seed).toBe(9);
    expect(await counts()).toEqual({ generations: before.generations + 3, jobs: before.jobs + 3 });
  });

  it('writes nothing when one input is bad, and names its index and field', async () => {
    const before = await counts();
    const res = await k.gql(GENERATE_BATCH, { inputs: [{ prompt: 'fine' }, { prompt: 'fine too' }, { prompt: 'bad', steps: 500 }] });
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inputs.2.steps' });
    const unknownModel = await k.gql(GENERATE_BATCH, { inputs: [{ prompt: 'fine' }, { prompt: 'x', modelId: '00000000-0000-4000-8000-000000000000' }] });
    expect(unknownModel.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inputs.1.modelId' });
    expect(await counts()).toEqual(before);
  });

  it('takes 1 to KILN_MAX_BATCH inputs', async () => {
    for (const inputs of [[], Array.from({ length: 6 }, (_, i) => ({ prompt: `p${i}` }))]) {
      const res = await k.gql(GENERATE_BATCH, { inputs });
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inputs' });
    }
  });

  it('estimates from the documented fallback before a model has history, then from its recent runs', async () => {
    const input = { prompt: 'estimate me', width: 512, height: 512, steps: 10 };
    const first = await ok(k.gql(GENERATE_BATCH, { inputs: [input, input] }));
    const fallback = 2 * (FALLBACK.overheadMs + FALLBACK.msPerStepMegapixel * 10 * 0.262144) / 1000;
    expect(first.generateBatch.estimatedTotalSeconds).toBeCloseTo(fallback, 1);

    // History: one finished run of this model, 2 s in all, 1.5 s of which denoising 10 steps at 512².
    await k.kiln.ds.query(
      `UPDATE jobs SET status = 'COMPLETED', completed_at = now(), timing = '{"totalMs": 2000, "generateMs": 1500}'
       WHERE id = $1`,
      [first.generateBatch.generations[0].id],
    );
    const second = await ok(k.gql(GENERATE_BATCH, { inputs: [input, { ...input, steps: 20 }] }));
    expect(second.generateBatch.estimatedTotalSeconds).toBeCloseTo(0.5 + 1.5 + 0.5 + 3, 1);
  });

  it('makes one generation for one key sent ten times at once, and gives all ten the same answer', async () => {
    const before = await counts();
    const input = { prompt: 'exactly once', seed: 5 };
    const answers = await Promise.all(Array.from({ length: 10 }, () => ok(k.gql(GENERATE_WITH_KEY, { input, key: 'order-42' }))));
    expect(new Set(answers.map((a) => a.generate.id)).size).toBe(1);
    expect(await counts()).toEqual({ generations: before.generations + 1, jobs: before.jobs + 1 });
  });

  it('refuses the same key with another input as CONFLICT, and keys are per operation input, not per operation name', async () => {
    await ok(k.gql(GENERATE_WITH_KEY, { input: { prompt: 'first' }, key: 'reused' }));
    const other = await k.gql(GENERATE_WITH_KEY, { input: { prompt: 'second' }, key: 'reused' });
    expect(other.errors![0]!.extensions!.code).toBe('CONFLICT');
    const asBatch = await k.gql(GENERATE_BATCH, { inputs: [{ prompt: 'first' }], key: 'reused' });
    expect(asBatch.errors![0]!.extensions!.code).toBe('CONFLICT');
  });

  it('replays a batch for its key, and frees keys once they expire', async () => {
    const inputs = [{ prompt: 'a' }, { prompt: 'b' }];
    const first = await ok(k.gql(GENERATE_BATCH, { inputs, key: 'batch-7' }));
    const again = await ok(k.gql(GENERATE_BATCH, { inputs, key: 'batch-7' }));
    expect(again.generateBatch.generations.map((g: { id: string }) => g.id)).toEqual(first.generateBatch.generations.map((g: { id: string }) => g.id));

    await k.kiln.ds.query(`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'batch-7'`);
    const fresh = await ok(k.gql(GENERATE_BATCH, { inputs: [{ prompt: 'c' }], key: 'batch-7' }));
    expect(fresh.generateBatch.generations[0].id).not.toBe(first.generateBatch.generations[0].id);
  });

  it('counts the queue in queueStats', async () => {
    const { queueStats } = await ok(k.gql(`{ queueStats { pending running completed failed cancelled oldestPendingAgeSeconds averageProcessingSeconds } }`));
    const [db] = await k.kiln.ds.query(`SELECT count(*) FILTER (WHERE status = 'PENDING')::int AS pending, count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed FROM jobs`);
    expect(queueStats).toMatchObject({ pending: db.pending, completed: db.completed, running: 0, failed: 0, cancelled: 0 });
    expect(queueStats.oldestPendingAgeSeconds).toBeGreaterThan(0);
    // The one backdated completion above: 2 s.
    expect(queueStats.averageProcessingSeconds).toBeCloseTo(2, 5);
  });

  it('refuses an unusable key', async () => {
    const res = await k.gql(GENERATE_WITH_KEY, { input: { prompt: 'x' }, key: 'has spaces' });
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'idempotencyKey' });
  });
});
