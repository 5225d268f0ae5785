import fs from 'node:fs/promises';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { ATTEMPTS, GENERATE, PROGRESS, progressOf } from '../support/operations.js';

describe('failures and retries', () => {
  let api: TestKiln;
  let client: Client;
  // Retry settings are the queue's, copied into each job when it is queued: they are the API's.
  beforeAll(async () => {
    api = await startTestKiln({ KILN_MAX_RETRIES: '2', KILN_RETRY_DELAY_MS: '1000' }, ['--role', 'api']);
    client = wsClient(api.url);
  });
  afterAll(async () => {
    await client?.dispose();
    await api?.stop();
  });

  /** Runs a worker on the API's database and storage until the generation ends. */
  async function runToEnd(id: string) {
    const worker = await startTestKiln({ DATABASE_URL: api.databaseUrl!, KILN_DATA_DIR: api.dataDir }, ['--role', 'worker']);
    try {
      const events = (await collect(client, PROGRESS, { id })).map(progressOf);
      return { events, generation: (await ok(api.gql(ATTEMPTS, { id }))).generation };
    } finally {
      await worker.stop();
    }
  }
  /** A file where the storage needs a folder: writing the attempt's images fails (a real I/O error). */
  const block = async (relative: string) => {
    const file = path.join(api.dataDir, 'storage', relative);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, 'in the way');
  };

  it('retries a retryable failure after a backoff, then succeeds, keeping each attempt\'s error', async () => {
    const { generate } = await ok(api.gql(GENERATE, { input: { prompt: 'retry me', steps: 2 } }));
    await block(`jobs/${generate.id}/1`); // only the first attempt's folder
    const { events, generation } = await runToEnd(generate.id);

    expect(generation).toMatchObject({ status: 'COMPLETED', retryCount: 1, error: null });
    expect(generation.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['RETRY', 'COMPLETED']);
    expect(generation.attempts[0].error).toMatchObject({ code: 'STORAGE_ERROR', retryable: true });
    expect(generation.attempts[0].error.message).not.toMatch(/\n\s+at /); // no stack trace for clients
    const pause = Date.parse(generation.attempts[1].startedAt) - Date.parse(generation.attempts[0].endedAt);
    expect(pause).toBeGreaterThanOrEqual(900);

    const steps = events.map((e) => `${e.attempt}:${e.step}`);
    const retried = steps.indexOf('1:QUEUED');
    expect(retried).toBeGreaterThan(0);
    expect(steps[retried - 1]).toBe('1:SAVING');
    expect(steps.slice(retried + 1, retried + 3)).toEqual(['2:LOADING_MODEL', '2:ENCODING_PROMPT']);
    expect(steps.at(-1)).toBe('2:COMPLETED');
    expect(events[retried]).toMatchObject({ status: 'PENDING', message: expect.stringContaining('STORAGE_ERROR') });
  });

  it('fails for good once the retries are spent', async () => {
    const { generate } = await ok(api.gql(GENERATE, { input: { prompt: 'never stored', steps: 1 } }));
    await block(`jobs/${generate.id}`); // every attempt's folder
    const { events, generation } = await runToEnd(generate.id);
    expect(generation).toMatchObject({ status: 'FAILED', currentStep: 'FAILED', retryCount: 2, error: { code: 'STORAGE_ERROR', retryable: true } });
    expect(generation.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['RETRY', 'RETRY', 'FAILED']);
    expect(events.filter((e) => e.step === 'LOADING_MODEL')).toHaveLength(3);
    expect(events.at(-1)).toMatchObject({ step: 'FAILED', status: 'FAILED', attempt: 3 });
  });

  it('fails at once, without retrying, when the model file is bad', async () => {
    await api.kiln.storage.put('models/broken/model_index.json', Buffer.from('{}'));
    await api.kiln.storage.put('models/broken/text_encoder.onnx', Buffer.from('not an onnx file'));
    await api.kiln.storage.put('models/broken/denoiser.onnx', Buffer.from('neither'));
    const [{ id: modelId }] = await api.kiln.ds.query(
      `INSERT INTO models (name, kind, pipeline, storage_key, files, size_bytes, sha256)
       VALUES ('broken', 'BASE', 'builtin', 'models/broken', '[]', 0, 'broken-model') RETURNING id`,
    );
    const { generate } = await ok(api.gql(GENERATE, { input: { prompt: 'x', modelId, steps: 1 } }));
    const { generation } = await runToEnd(generate.id);
    expect(generation).toMatchObject({ status: 'FAILED', retryCount: 0, error: { code: 'MODEL_LOAD_FAILED', retryable: false } });
    expect(generation.attempts).toHaveLength(1);
  });
});
