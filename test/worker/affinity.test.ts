import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBuiltinLora } from '../../src/models/builtin-lora.js';
import { modelIdNamed, ok } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { uploadMultipart } from '../support/uploads.js';

const EVENTS = /* GraphQL */ `query($id: ID!) { generation(id: $id) { status startedAt events { step message } } }`;

/**
 * A worker keeps the last model it used loaded (here the session cache holds one); jobs whose
 * model it has loaded go first, within the affinity window and never past a higher priority.
 */
describe('warm-model affinity', () => {
  let api: TestKiln;
  let loraId: string;
  beforeAll(async () => {
    api = await startTestKiln({}, ['--role', 'api']);
    const base = await modelIdNamed(api.gql);
    const upload = await uploadMultipart(api.url, makeBuiltinLora({ seed: 7 }), 'style.safetensors', { name: 'style', kind: 'LORA', baseModelId: base });
    loraId = upload.data.uploadModel.id;
  });
  afterAll(() => api?.stop());

  /** Queues jobs for the plain model (A) and the model with the LoRA (B), in this order. */
  const queue = async (models: string, priorities: number[] = []) => {
    const ids: string[] = [];
    for (const [i, m] of [...models].entries()) {
      const input = { prompt: `job ${i}`, steps: 1, width: 64, height: 64, priority: priorities[i] ?? 0, ...(m === 'B' ? { loraId, loraWeight: 1 } : {}) };
      ids.push((await ok(api.gql(`mutation($input: GenerateInput!) { generate(input: $input) { id } }`, { input }))).generate.id);
    }
    return ids;
  };

  /** Runs the backlog with one worker whose runner holds one loaded model; the order jobs started in, and the loads. */
  async function drain(ids: string[], env: Record<string, string> = {}) {
    const worker = await startTestKiln({ DATABASE_URL: api.databaseUrl!, KILN_DATA_DIR: api.dataDir, KILN_SESSION_CACHE_MB: '1.5', ...env }, ['--role', 'worker']);
    try {
      const runs = async () => Promise.all(ids.map(async (id) => (await ok(api.gql(EVENTS, { id }))).generation));
      await expect.poll(async () => (await runs()).every((g) => g.status === 'COMPLETED'), { timeout: 60_000 }).toBe(true);
      const done = await runs();
      const order = done.map((g, i) => ({ i, at: Date.parse(g.startedAt) })).sort((a, b) => a.at - b.at).map((r) => r.i);
      const loads = done.filter((g) => g.events.some((e: { step: string; message: string }) => e.step === 'ENCODING_PROMPT' && /^Model loaded/.test(e.message))).length;
      return { order, loads };
    } finally {
      await worker.stop();
    }
  }

  it('runs the jobs of the model it has loaded first, loading each model once', async () => {
    const ids = await queue('ABABAB');
    const { order, loads } = await drain(ids);
    expect(order).toEqual([0, 2, 4, 1, 3, 5]);
    expect(loads).toBe(2);
  });

  it('runs them in queue order with affinity off (KILN_AFFINITY_WAIT_S=0), loading the model for every switch', async () => {
    const ids = await queue('ABABAB');
    const { order, loads } = await drain(ids, { KILN_AFFINITY_WAIT_S: '0' });
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(loads).toBe(6);
  });

  it('never passes over a job of higher priority, nor one that has waited past the affinity window', async () => {
    const urgent = await queue('ABAB', [0, 0, 0, 5]);
    expect((await drain(urgent)).order).toEqual([3, 1, 0, 2]);
    const ids = await queue('ABA');
    await api.kiln.ds.query(`UPDATE jobs SET created_at = now() - interval '1 minute' WHERE id = $1`, [ids[1]]);
    expect((await drain(ids, { KILN_AFFINITY_WAIT_S: '30' })).order).toEqual([0, 1, 2]);
  });
});
