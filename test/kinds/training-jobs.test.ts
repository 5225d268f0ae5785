import fs from 'node:fs/promises';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { collect, follow, modelIdNamed, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE, GENERATION, PROGRESS } from '../support/operations.js';
import { TRAIN, TRAINING, TRAINING_PROGRESS, trainingDataset, type TrainingEvent, trainingEventOf, trainingLabel } from '../support/training-operations.js';

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('LoRA trainings on a real worker', () => {
  let k: TestKiln;
  let client: Client;
  let dataset: { id: string; sha256: string; captions: string[] };
  let builtinId: string;

  beforeAll(async () => {
    k = await startTestKiln({ KILN_RECONCILE_INTERVAL_S: '1' });
    client = wsClient(k.url);
    dataset = await trainingDataset(k.url);
    builtinId = await modelIdNamed(k.gql);
  });
  afterAll(async () => {
    await client?.dispose();
    await k?.stop();
  });

  const stored = async (prefix: string) =>
    (await fs.readdir(path.join(k.dataDir, 'storage', prefix), { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile()).map((e) => e.name);
  const attemptFolders = () => fs.readdir(path.join(k.dataDir, 'training')).catch(() => [] as string[]);
  const train = async (input: Record<string, unknown>) => (await ok(k.gql(TRAIN, { input: { datasetId: dataset.id, name: 'kiln test', triggerWord: 'kilnstyle', ...input } }))).trainLora;
  const events = async (id: string) => (await collect<{ generationProgress: TrainingEvent }>(client, TRAINING_PROGRESS, { id })).map(trainingEventOf);

  it('trains a builtin LoRA end to end: steps with the loss, samples, checkpoints in storage, and a LoRA model generate takes with its trigger word', async () => {
    const started = await train({ steps: 60, rank: 8, learningRate: 0.01, resolution: 16, batchSize: 4, seed: 7, checkpointEvery: 20, sampleEvery: 30 });
    expect(started).toMatchObject({ kind: 'training', status: 'PENDING', trainer: 'BUILTIN', alpha: 8, dataset: { id: dataset.id }, baseModel: { id: builtinId } });
    const evs = await events(started.id);

    const labels = evs.map(trainingLabel);
    expect(labels.slice(0, 3)).toEqual(['QUEUED', 'PREPARING_DATASET', 'LOADING_MODEL']);
    expect(labels.slice(-2)).toEqual(['SAVING', 'COMPLETED']);
    expect(labels.filter((l) => /^T\d+$/.test(l))).toEqual(range(1, 60).map((i) => `T${i}`));
    expect(labels.filter((l) => /^S\d+$/.test(l))).toEqual(['S30', 'S60']);
    // Uploads of checkpoints written faster than they are stored give way to the newest; the last is always stored.
    const checkpoints = labels.filter((l) => /^C\d+$/.test(l));
    expect(checkpoints.at(-1)).toBe('C60');
    expect(checkpoints.every((c) => ['C20', 'C40', 'C60'].includes(c))).toBe(true);
    const progress = evs.map((e) => e.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    const steps = evs.filter((e) => e.step === 'TRAINING' && e.detail?.loss !== undefined);
    expect(steps.every((e) => e.stepCount === 60 && typeof e.detail!.loss === 'number' && e.detail!.learningRate === 0.01 && e.etaSeconds !== null)).toBe(true);
    const sample = evs.find((e) => e.detail?.sampleStep === 60)!;
    expect(sample.detail!.prompts).toEqual(['kilnstyle', `kilnstyle, ${dataset.captions[0]}`]);
    const strip = await sharp(Buffer.from(sample.preview!.replace(/^data:image\/png;base64,/, ''), 'base64')).metadata();
    expect([strip.width, strip.height]).toEqual([256, 128]);

    const { training } = await ok(k.gql(TRAINING, { id: started.id }));
    expect(training).toMatchObject({ status: 'COMPLETED', currentStep: 'COMPLETED', progress: 1, dataset: { id: dataset.id, sha256: dataset.sha256 } });
    expect(training.loss.map((p: { step: number }) => p.step)).toEqual(range(1, 60));
    const losses = training.loss.map((p: { loss: number }) => p.loss);
    expect(mean(losses.slice(-10))).toBeLessThan(mean(losses.slice(0, 10)));
    expect(training.timing.generateMs).toBeGreaterThan(0);
    expect(training.model).toMatchObject({
      id: started.id,
      name: 'kiln test',
      kind: 'LORA',
      pipeline: 'builtin',
      triggerWord: 'kilnstyle',
      baseModel: { id: builtinId },
      training: {
        trainer: 'BUILTIN',
        datasetName: 'pictures',
        datasetSha256: dataset.sha256,
        parameters: { steps: 60, rank: 8, alpha: 8, learningRate: 0.01, resolution: 16, batchSize: 4, seed: 7, checkpointEvery: 20, sampleEvery: 30 },
        metadata: { ss_network_dim: '8', ss_output_name: 'kiln test', 'kiln.trigger_word': 'kilnstyle', 'kiln.dataset_sha256': dataset.sha256, 'kiln.training_job': started.id },
        training: { id: started.id },
        dataset: { id: dataset.id },
      },
    });
    expect(await stored(`models/${started.id}`)).toEqual(['adapter.safetensors']);
    expect(await stored(`jobs/${started.id}/checkpoints`)).toContain('latest-1.json');
    expect(await attemptFolders()).toEqual([]);

    // At once a LoRA of the built-in model, for generations with its trigger word.
    const run = async (input: Record<string, unknown>) => {
      const { generate } = await ok(k.gql(GENERATE, { input: { prompt: `kilnstyle, ${dataset.captions[0]}`, steps: 8, width: 64, height: 64, seed: 5, ...input } }));
      await collect(client, PROGRESS, { id: generate.id });
      return (await ok(k.gql(GENERATION, { id: generate.id }))).generation;
    };
    const withLora = await run({ loraId: started.id });
    const without = await run({});
    expect(withLora.status).toBe('COMPLETED');
    expect(withLora.images[0].sha256).not.toBe(without.images[0].sha256);
  });

  it('leaves no model when cancelled mid-way, and its work folder goes', async () => {
    const { id } = await train({ steps: 5000, resolution: 16, batchSize: 4, checkpointEvery: 10, sampleEvery: 0 });
    const watch = follow<{ generationProgress: TrainingEvent }>(client, TRAINING_PROGRESS, { id });
    await watch.until((v) => trainingEventOf(v).detail?.checkpointStep !== undefined);
    await ok(k.gql(`mutation($id: ID!) { cancelJob(id: $id) { id } }`, { id }));
    const evs = (await watch.done).map(trainingEventOf);
    expect(evs.at(-1)).toMatchObject({ step: 'CANCELLED', status: 'CANCELLED' });
    const { training } = await ok(k.gql(TRAINING, { id }));
    expect(training).toMatchObject({ status: 'CANCELLED', model: null });
    expect(await k.kiln.ds.query('SELECT id FROM models WHERE id = $1', [id])).toEqual([]);
    expect(await stored(`models/${id}`)).toEqual([]);
    expect(await attemptFolders()).toEqual([]);
    expect(training.loss.length).toBeGreaterThanOrEqual(10);

    // Its checkpoints are kept for KILN_FILE_RETENTION_DAYS, then swept by the reconciler.
    expect(await stored(`jobs/${id}/checkpoints`)).toContain('latest-1.json');
    await k.kiln.ds.query(`UPDATE jobs SET completed_at = now() - interval '8 days' WHERE id = $1`, [id]);
    await vi.waitFor(async () => expect(await k.kiln.ds.query('SELECT job_id FROM training_sweeps WHERE job_id = $1', [id])).toHaveLength(1), { timeout: 10_000, interval: 200 });
    expect(await stored(`jobs/${id}/checkpoints`)).toEqual([]);
  });

  it('removes a training’s files at once when it is deleted; its model stays', async () => {
    const { id } = await train({ steps: 8, resolution: 16, checkpointEvery: 4, sampleEvery: 0 });
    await events(id);
    expect(await stored(`jobs/${id}/checkpoints`)).not.toEqual([]);
    await ok(k.gql(`mutation($id: ID!) { deleteJob(id: $id) }`, { id }));
    expect(await stored(`jobs/${id}`)).toEqual([]);
    const { model } = await ok(k.gql(`query($id: ID!) { model(id: $id) { id files { path } training { training { id } datasetSha256 } } }`, { id }));
    expect(model).toEqual({ id, files: [{ path: 'adapter.safetensors' }], training: { training: null, datasetSha256: dataset.sha256 } });
  });

  it('refuses at submit what the trainer, base model or dataset cannot do, naming the field', async () => {
    const refusal = async (input: Record<string, unknown>) => (await k.gql(TRAIN, { input: { datasetId: dataset.id, name: 'x', triggerWord: 'kilnstyle', ...input } })).errors?.[0];
    expect(await refusal({ resolution: 72 })).toMatchObject({
      message: 'input.resolution is 72, more than the short side of 5 image(s) of dataset "pictures": 00.png (64×64), 01.png (64×64), 02.png (64×64), 03.png (64×64), 04.png (64×64)',
      extensions: { code: 'BAD_USER_INPUT', field: 'input.resolution' },
    });
    expect((await refusal({ resolution: 12 }))?.extensions).toMatchObject({ field: 'input.resolution' });
    expect((await refusal({ trainer: 'SD_SCRIPTS' }))?.message).toBe('input.trainer sd-scripts trains LoRAs for stable-diffusion-onnx models, not for builtin models like "kiln-builtin"');
    expect((await refusal({ steps: 0 }))?.extensions).toMatchObject({ field: 'input.steps' });
    expect((await refusal({ triggerWord: 'a, b' }))?.extensions).toMatchObject({ field: 'input.triggerWord' });
    expect((await refusal({ learningRate: 0 }))?.extensions).toMatchObject({ field: 'input.learningRate' });
    expect((await refusal({ trainingWeights: '/opt/weights' }))?.extensions).toMatchObject({ field: 'input.trainingWeights' });
    expect((await refusal({ datasetId: builtinId }))?.extensions).toMatchObject({ field: 'input.datasetId' });
    expect((await refusal({ baseModelId: dataset.id }))?.extensions).toMatchObject({ field: 'input.baseModelId' });
  });

  it('gives each attempt the training time limit, KILN_TRAINING_TIMEOUT_S (2 hours by default)', async () => {
    const { id } = await train({ steps: 2, resolution: 16, sampleEvery: 0 });
    await events(id);
    const [job] = await k.kiln.ds.query('SELECT expire_seconds FROM pgboss.job WHERE id = $1', [id]);
    // pg-boss's own expiry is a backstop a minute behind the runner's hard limit.
    expect(job.expire_seconds).toBe(7200 + 60);
  });
});
