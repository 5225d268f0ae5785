import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseSafetensors } from '../../src/models/safetensors.js';
import { builtinTrainer } from '../../src/trainers/builtin/trainer.js';
import { follow, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { type KilnProcess, spawnKiln } from '../support/processes.js';
import { writeBuiltinModel } from '../support/training-datasets.js';
import { TRAIN, TRAINING, TRAINING_PROGRESS, trainingDataset, type TrainingEvent, trainingEventOf } from '../support/training-operations.js';

const SPEC = { steps: 120, rank: 4, alpha: 4, learningRate: 0.01, resolution: 16, batchSize: 4, seed: 21, checkpointEvery: 20, sampleEvery: 0 };

/** The LoRA's tensors (names and bytes), whatever the metadata says. */
function tensors(bytes: Uint8Array) {
  const header = parseSafetensors(bytes);
  return Object.fromEntries(header.tensors.map((t) => [t.name, Buffer.from(bytes.subarray(t.begin, t.end)).toString('base64')]));
}

describe('a training whose worker is killed', () => {
  let api: TestKiln;
  let client: Client;
  let first: KilnProcess | undefined;
  let second: TestKiln | undefined;

  beforeAll(async () => {
    api = await startTestKiln({ KILN_RECONCILE_INTERVAL_S: '1' }, ['--role', 'api']);
    client = wsClient(api.url);
  });
  afterAll(async () => {
    await first?.kill('SIGKILL');
    await second?.stop();
    await client?.dispose();
    await api?.stop();
  });

  it('continues on another worker from the last checkpoint in storage, and ends with the adapter an unbroken training makes', async () => {
    const env = { DATABASE_URL: api.databaseUrl!, KILN_DATA_DIR: api.dataDir, KILN_RETRY_DELAY_MS: '0' };
    first = await spawnKiln(env, ['--role', 'worker']);
    const dataset = await trainingDataset(api.url);
    const { trainLora } = await ok(api.gql(TRAIN, { input: { datasetId: dataset.id, name: 'survivor', triggerWord: 'kilnstyle', ...SPEC } }));
    const watch = follow<{ generationProgress: TrainingEvent }>(client, TRAINING_PROGRESS, { id: trainLora.id });
    const stored = trainingEventOf(await watch.until((v) => (trainingEventOf(v).detail?.checkpointStep ?? 0) >= 40));
    await first.kill('SIGKILL');
    second = await startTestKiln(env, ['--role', 'worker']);

    const evs = (await watch.done).map(trainingEventOf);
    const lastStored = Math.max(...evs.filter((e) => e.attempt === 1 && e.detail?.checkpointStep).map((e) => e.detail!.checkpointStep as number));
    expect(lastStored).toBeGreaterThanOrEqual(stored.detail!.checkpointStep);
    const again = evs.filter((e) => e.attempt === 2);
    expect(again.find((e) => e.step === 'LOADING_MODEL')!.message).toBe(`Loading the model; continuing from the checkpoint at step ${lastStored}`);
    const trained = again.filter((e) => e.step === 'TRAINING' && e.detail?.loss !== undefined).map((e) => e.stepIndex);
    expect(trained).toEqual(Array.from({ length: SPEC.steps - lastStored }, (_, i) => lastStored + 1 + i));
    expect(evs.at(-1)!.step).toBe('COMPLETED');

    const { training } = await ok(api.gql(TRAINING, { id: trainLora.id }));
    expect(training.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['WORKER_LOST', 'COMPLETED']);
    // Steps trained twice (after the checkpoint, before the kill) count as their last run.
    expect(training.loss.map((p: { step: number }) => p.step)).toEqual(Array.from({ length: SPEC.steps }, (_, i) => i + 1));

    // The same spec trained in one go here gives the same LoRA, value for value.
    const storage = path.join(api.dataDir, 'storage');
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-resume-reference-'));
    try {
      const reference = await builtinTrainer.train(
        {
          ...SPEC,
          datasetDir: path.join(storage, 'datasets', dataset.id),
          baseModel: { dir: await writeBuiltinModel(path.join(root, 'model')), pipeline: 'builtin' },
          triggerWord: 'kilnstyle',
          name: 'survivor',
          workDir: path.join(root, 'work'),
          checkpointEvery: 0,
        },
        { signal: new AbortController().signal, onStep() {}, onSample() {}, onCheckpoint() {} },
      );
      const resumed = new Uint8Array(await fs.readFile(path.join(storage, 'models', trainLora.id, 'adapter.safetensors')));
      expect(tensors(resumed)).toEqual(tensors(new Uint8Array(await fs.readFile(reference.adapterPath))));
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
    // The killed worker's folder for its attempt is removed by the worker that is left.
    await vi.waitFor(async () => expect(await fs.readdir(path.join(api.dataDir, 'training'))).toEqual([]), { timeout: 10_000, interval: 200 });
  });
});
