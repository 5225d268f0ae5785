import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { externalTrainingFixtures, standin } from '../support/external-trainers.js';
import { collect, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { buildSdFixture } from '../support/sd-fixtures.js';
import { TRAIN, TRAINING, TRAINING_PROGRESS, trainingDataset, type TrainingEvent, trainingEventOf, trainingLabel } from '../support/training-operations.js';
import { uploadDirect } from '../support/uploads.js';

const QUEUE_STATS = `{ queueStats(kind: "training") { pending blocked { queue kind pending reason } } }`;

/**
 * ai-toolkit and sd-scripts through the service, against the stand-ins that write what each
 * tool writes: a training waits while no worker has its trainer, then a worker whose host has
 * it (KILN_TRAINER_* naming the stand-in) takes it and the adapter becomes a LoRA model.
 */
describe('external trainers through the service', () => {
  let k: TestKiln;
  let gpuWorker: TestKiln | undefined;
  let client: Client;
  let root: string;
  let sdModelId: string;
  let datasetId: string;
  let weights: string;

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-external-training-'));
    // What the tools load: a folder whose unet/config.json says SD 1.x (Kiln's ONNX export is the model generate runs).
    weights = (await externalTrainingFixtures(root)).baseDir;
    k = await startTestKiln();
    client = wsClient(k.url);
    const files = buildSdFixture({ layout: 'optimum' }).map((f) => ({ path: f.path, bytes: typeof f.bytes === 'string' ? new TextEncoder().encode(f.bytes) : f.bytes }));
    sdModelId = (await ok(uploadDirect(k.gql, files, { name: 'tiny sd', kind: 'BASE' }))).completeModelUpload.id;
    datasetId = (await trainingDataset(k.url)).id;
  });
  afterAll(async () => {
    await client?.dispose();
    await gpuWorker?.stop();
    await k?.stop();
    await fs.rm(root, { recursive: true, force: true });
  });

  it('waits, saying why, while no worker has its trainer; then one that has it trains and registers the LoRA', async () => {
    const submit = async (trainer: string) =>
      (
        await ok(
          k.gql(TRAIN, {
            input: { datasetId, baseModelId: sdModelId, trainer, name: `${trainer} lora`, triggerWord: 'kilnstyle', steps: 10, rank: 4, alpha: 2, resolution: 64, batchSize: 2, seed: 5, checkpointEvery: 4, sampleEvery: 5, trainingWeights: weights },
          }),
        )
      ).trainLora;
    const sd = await submit('SD_SCRIPTS');
    const ai = await submit('AI_TOOLKIT');
    expect([sd.trainer, ai.trainer, sd.learningRate]).toEqual(['SD_SCRIPTS', 'AI_TOOLKIT', 1e-4]);

    const { queueStats } = await ok(k.gql(QUEUE_STATS));
    expect(queueStats.pending).toBe(2);
    expect(queueStats.blocked.map((b: { queue: string }) => b.queue)).toEqual(['training.ai-toolkit', 'training.sd-scripts']);
    const [aiBlocked, sdBlocked] = queueStats.blocked;
    expect(sdBlocked.reason).toMatch(/^none of the 1 running worker\(s\) takes training\.sd-scripts jobs \(they take .*training\.builtin\)/);
    expect(sdBlocked.reason).toMatch(/start one whose KILN_WORKER_KINDS includes training and that has the sd-scripts trainer \(KILN_TRAINER_SD_SCRIPTS set on its host\)$/);
    expect(aiBlocked.reason).toMatch(/that has the ai-toolkit trainer \(KILN_TRAINER_AI_TOOLKIT set on its host\)$/);
    const { training: waiting } = await ok(k.gql(TRAINING, { id: sd.id }));
    expect(waiting.status).toBe('PENDING');

    gpuWorker = await startTestKiln(
      {
        DATABASE_URL: k.databaseUrl!,
        KILN_DATA_DIR: k.dataDir,
        KILN_TRAINER_SD_SCRIPTS: standin('sd-scripts', '--standin-step-ms=5').join(' '),
        KILN_TRAINER_AI_TOOLKIT: standin('ai-toolkit', '--standin-step-ms=5').join(' '),
      },
      ['--role', 'worker'],
    );
    for (const [job, metadata] of [
      [sd, { ss_network_module: 'networks.lora', ss_network_dim: '4', ss_network_alpha: '2.0', 'kiln.trainer': 'sd-scripts' }],
      [ai, { 'kiln.trainer': 'ai-toolkit', ss_output_name: 'AI_TOOLKIT_lora' }],
    ] as const) {
      const evs = (await collect<{ generationProgress: TrainingEvent }>(client, TRAINING_PROGRESS, { id: job.id })).map(trainingEventOf);
      const labels = evs.map(trainingLabel);
      expect(labels.filter((l) => /^T\d+$/.test(l))).toEqual(Array.from({ length: 10 }, (_, i) => `T${i + 1}`));
      expect(labels.filter((l) => /^S\d+$/.test(l))).toEqual(['S5', 'S10']);
      expect(labels.at(-1)).toBe('COMPLETED');
      const { training } = await ok(k.gql(TRAINING, { id: job.id }));
      expect(training.loss).toHaveLength(10);
      expect(training.model).toMatchObject({ id: job.id, kind: 'LORA', pipeline: 'stable-diffusion-onnx', triggerWord: 'kilnstyle', baseModel: { id: sdModelId }, training: { metadata } });
      expect(training.model.training.parameters).toMatchObject({ steps: 10, rank: 4, alpha: 2, resolution: 64, trainingWeights: weights });
    }
    expect((await ok(k.gql(QUEUE_STATS))).queueStats).toEqual({ pending: 0, blocked: [] });
  });
});
