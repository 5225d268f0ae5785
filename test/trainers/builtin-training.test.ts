import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobFailure } from '../../src/errors.js';
import { readLoraAdapter } from '../../src/models/lora-adapter.js';
import { loraPatcher } from '../../src/models/lora-merge.js';
import { BUILTIN_DEFAULTS, BUILTIN_FILES, builtinLoraTargets } from '../../src/pipelines/builtin/model-files.js';
import { loadBuiltinPipeline } from '../../src/pipelines/builtin/pipeline.js';
import type { RgbImage } from '../../src/pipelines/pipeline.js';
import { builtinTrainer } from '../../src/trainers/builtin/trainer.js';
import { SAMPLE_STEPS } from '../../src/trainers/builtin/samples.js';
import { captionWithTrigger, readDatasetFolder } from '../../src/trainers/dataset-folder.js';
import type { TrainingHooks, TrainingProgress, TrainingSample, TrainingSpec } from '../../src/trainers/trainer.js';
import { writeBuiltinModel, writeTrainingDataset } from '../support/training-datasets.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TRIGGER = 'kilnstyle';
const sha = async (file: string) => crypto.createHash('sha256').update(await fs.readFile(file)).digest('hex');

let root: string;
let modelDir: string;
let datasetDir: string;
let captions: string[];
let runs = 0;

/** A short training: 12 steps at 8×8, a checkpoint every 4. */
const spec = (overrides: Partial<TrainingSpec> = {}): TrainingSpec => ({
  datasetDir,
  baseModel: { dir: modelDir, pipeline: 'builtin' },
  triggerWord: TRIGGER,
  name: 'test-lora',
  steps: 12,
  rank: 4,
  alpha: 4,
  learningRate: 0.01,
  resolution: 8,
  batchSize: 2,
  seed: 42,
  workDir: path.join(root, `work-${++runs}`),
  checkpointEvery: 4,
  sampleEvery: 0,
  ...overrides,
});

const hooks = (overrides: Partial<TrainingHooks> = {}): TrainingHooks => ({
  signal: new AbortController().signal,
  onStep() {},
  onSample() {},
  onCheckpoint() {},
  ...overrides,
});

/** Images from the real built-in pipeline, with the adapter merged at weight 1 when given. */
async function generate(prompt: string, seed: number, size: number, adapterPath?: string): Promise<RgbImage> {
  const graphPatch = adapterPath ? loraPatcher(await readLoraAdapter(adapterPath), 1, { file: BUILTIN_FILES.denoiser }) : undefined;
  const pipeline = await loadBuiltinPipeline(modelDir, { executionProviders: ['cpu'], ...(graphPatch && { graphPatches: [graphPatch] }) });
  try {
    const request = { prompt, negativePrompt: null, steps: SAMPLE_STEPS, guidanceScale: BUILTIN_DEFAULTS.guidanceScale, width: size, height: size, seed, numImages: 1 };
    const { images } = await pipeline.generate(request, { signal: new AbortController().signal, onStep() {} });
    if (graphPatch) expect(graphPatch.report().matched.map((m) => m.initializer)).toEqual(Object.keys(builtinLoraTargets).map((m) => `${m}.weight`));
    return images[0]!;
  } finally {
    await pipeline.release();
  }
}

const meanColour = (data: Uint8Array) => [0, 1, 2].map((c) => data.filter((_, i) => i % 3 === c).reduce((a, b) => a + b, 0) / (data.length / 3));
/** Euclidean distance between the two images' mean colours, in 0…255 units. */
const colourDistance = (a: Uint8Array, b: Uint8Array) => Math.hypot(...meanColour(a).map((v, i) => v - meanColour(b)[i]!));
/** Mean absolute difference per pixel and channel. */
const pixelDistance = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-builtin-training-'));
  modelDir = await writeBuiltinModel(path.join(root, 'model'));
  datasetDir = path.join(root, 'dataset');
  captions = (await writeTrainingDataset(datasetDir, 5)).map((p) => p.caption);
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('the builtin trainer', () => {
  it('learns: the loss falls and generations with the adapter and trigger word are closer to the dataset than without', async () => {
    const result = await builtinTrainer.train(spec({ steps: 120, rank: 8, alpha: 8, resolution: 16, batchSize: 4, checkpointEvery: 0 }), hooks());
    const losses = result.lossCurve.map((p) => p.loss);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-10))).toBeLessThan(0.5 * mean(losses.slice(0, 10)));

    const distances = { colour: { without: 0, with: 0 }, pixel: { without: 0, with: 0 } };
    let n = 0;
    for (const [i, caption] of captions.entries()) {
      const target = await sharp(path.join(datasetDir, `00${i + 1}.png`)).resize(16, 16).removeAlpha().raw().toBuffer();
      for (const seed of [7, 8]) {
        const prompt = captionWithTrigger(caption, TRIGGER);
        const without = (await generate(prompt, seed, 16)).data;
        const withLora = (await generate(prompt, seed, 16, result.adapterPath)).data;
        distances.colour.without += colourDistance(without, target);
        distances.colour.with += colourDistance(withLora, target);
        distances.pixel.without += pixelDistance(without, target);
        distances.pixel.with += pixelDistance(withLora, target);
        n++;
      }
    }
    const report = Object.fromEntries(Object.entries(distances).map(([k, d]) => [k, { without: +(d.without / n).toFixed(1), with: +(d.with / n).toFixed(1) }]));
    console.log('distance to the dataset image (0…255):', JSON.stringify(report), `loss ${losses[0]!.toFixed(3)} → ${losses.at(-1)!.toFixed(3)}`);
    expect(report.colour!.with).toBeLessThan(0.7 * report.colour!.without);
    expect(report.pixel!.with).toBeLessThan(0.75 * report.pixel!.without);
  });

  it('writes an adapter that loads through readLoraAdapter, with kohya-style metadata, the parameters and the dataset hash', async () => {
    const s = spec();
    const result = await builtinTrainer.train(s, hooks());
    expect(result.adapterPath).toBe(path.join(s.workDir, 'adapter.safetensors'));
    const adapter = await readLoraAdapter(result.adapterPath);
    expect(adapter.modules.map((m) => [m.component, m.path, m.rank, m.alpha, m.up.shape[0], m.down.shape[1]])).toEqual(
      Object.entries(builtinLoraTargets).map(([module, [out, inner]]) => ['denoiser', module, 4, 4, out, inner]),
    );
    expect(adapter.metadata).toEqual(result.metadata);
    expect(result.metadata).toMatchObject({
      ss_output_name: 'test-lora',
      ss_network_dim: '4',
      ss_network_alpha: '4',
      ss_learning_rate: '0.01',
      ss_steps: '12',
      ss_seed: '42',
      ss_resolution: '(8, 8)',
      ss_num_train_images: '5',
      'kiln.trainer': 'builtin',
      'kiln.pipeline': 'builtin',
      'kiln.trigger_word': TRIGGER,
      'kiln.dataset_sha256': (await readDatasetFolder(datasetDir)).sha256,
    });
    expect(JSON.parse(result.metadata.ss_tag_frequency!)).toEqual({ [`1_${TRIGGER}`]: expect.objectContaining({ [TRIGGER]: 5, 'a red square': 1 }) });
    expect(result.lossCurve.map((p) => p.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(result.resumedFromStep).toBe(0);
  });

  it('is deterministic: the same spec gives the same bytes and losses, another seed others', async () => {
    const [a, b, c] = await Promise.all([spec(), spec(), spec({ seed: 43 })].map((s) => builtinTrainer.train(s, hooks())));
    expect(await sha(a!.adapterPath)).toBe(await sha(b!.adapterPath));
    expect(a!.lossCurve).toEqual(b!.lossCurve);
    expect(await sha(c!.adapterPath)).not.toBe(await sha(a!.adapterPath));
  });

  it('reports every step with its loss, learning rate and ETA, and a checkpoint every K steps', async () => {
    const progress: TrainingProgress[] = [];
    const checkpoints: { step: number; exists: boolean }[] = [];
    await builtinTrainer.train(
      spec({ steps: 10, checkpointEvery: 3 }),
      hooks({
        onStep: (p) => progress.push(p),
        onCheckpoint: async (c) => {
          checkpoints.push({ step: c.step, exists: (await fs.stat(c.path)).isFile() });
        },
      }),
    );
    expect(progress.map((p) => [p.step, p.totalSteps, p.learningRate])).toEqual(Array.from({ length: 10 }, (_, i) => [i + 1, 10, 0.01]));
    expect(progress.every((p) => p.loss !== null && p.loss > 0 && p.etaSeconds !== null && p.etaSeconds >= 0)).toBe(true);
    expect(progress.at(-1)!.etaSeconds).toBe(0);
    expect(checkpoints).toEqual([3, 6, 9].map((step) => ({ step, exists: true })));
  });

  it('continues an aborted training from its last checkpoint and ends with the bytes of an uninterrupted one', async () => {
    const whole = await builtinTrainer.train(spec(), hooks());
    const interrupted = spec();
    const controller = new AbortController();
    const stopped = builtinTrainer.train(
      interrupted,
      hooks({
        signal: controller.signal,
        onStep: (p) => p.step === 7 && controller.abort(new Error('stop here')),
      }),
    );
    await expect(stopped).rejects.toThrow('stop here');
    await expect(fs.stat(path.join(interrupted.workDir, 'adapter.safetensors'))).rejects.toThrow();

    const steps: number[] = [];
    const resumed = await builtinTrainer.train(interrupted, hooks({ onStep: (p) => steps.push(p.step) }));
    expect(resumed.resumedFromStep).toBe(4);
    expect(steps).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    expect(await sha(resumed.adapterPath)).toBe(await sha(whole.adapterPath));
    expect(resumed.lossCurve).toEqual(whole.lossCurve);
  });

  it('resumes a training whose process was SIGKILLed mid-way, with the same result as an uninterrupted one', async () => {
    // Steps of some milliseconds, so that the kill lands mid-way.
    const s = spec({ steps: 40, checkpointEvery: 3, resolution: 16, batchSize: 4 });
    const whole = await builtinTrainer.train({ ...s, workDir: path.join(root, 'whole-40') }, hooks());
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/builtin-training-process.ts', JSON.stringify(s)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    for await (const line of readline.createInterface({ input: child.stdout! })) {
      if ((JSON.parse(line) as { step?: number }).step === 8) {
        child.kill('SIGKILL');
        break;
      }
    }
    expect(await exited).toBe('SIGKILL');
    const resumed = await builtinTrainer.train(s, hooks());
    expect(resumed.resumedFromStep % 3).toBe(0);
    expect(resumed.resumedFromStep).toBeGreaterThanOrEqual(6);
    expect(resumed.resumedFromStep).toBeLessThan(40);
    expect(await sha(resumed.adapterPath)).toBe(await sha(whole.adapterPath));
    expect(resumed.lossCurve).toEqual(whole.lossCurve);
  });

  it('never resumes a checkpoint of another training in the same folder', async () => {
    const s = spec();
    await builtinTrainer.train(s, hooks());
    const other = await builtinTrainer.train({ ...s, learningRate: 0.02 }, hooks());
    expect(other.resumedFromStep).toBe(0);
    const fresh = await builtinTrainer.train({ ...spec(), learningRate: 0.02 }, hooks());
    expect(await sha(other.adapterPath)).toBe(await sha(fresh.adapterPath));
  });

  it('stops when cancelled, rejecting with the reason and writing no adapter', async () => {
    const s = spec({ steps: 1000, checkpointEvery: 0 });
    const controller = new AbortController();
    const seen: number[] = [];
    const run = builtinTrainer.train(s, hooks({ signal: controller.signal, onStep: (p) => (seen.push(p.step), p.step === 2 && controller.abort(new JobFailure('CANCELLED', 'Cancelled by request', false))) }));
    await expect(run).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(seen).toEqual([1, 2]);
    await expect(fs.readdir(s.workDir)).rejects.toThrow();
  });

  it('renders samples every K steps through the real pipeline with the adapter as it stands', async () => {
    const samples: TrainingSample[] = [];
    const s = spec({ sampleEvery: 4, resolution: 12 });
    const result = await builtinTrainer.train(s, hooks({ onSample: (x) => void samples.push(x) }));
    expect(samples.map((x) => [x.step, x.prompts])).toEqual([4, 8, 12].map((step) => [step, [TRIGGER, captionWithTrigger(captions[0]!, TRIGGER)]]));
    for (const x of samples) expect(x.images.map((im) => [im.width, im.height, im.data.length])).toEqual([[12, 12, 432], [12, 12, 432]]);
    expect(Buffer.compare(samples[0]!.images[0]!.data, samples[2]!.images[0]!.data)).not.toBe(0);
    // The last sample is what a generation with the finished adapter makes.
    const generated = await generate(TRIGGER, s.seed, 12, result.adapterPath);
    expect(Buffer.from(samples[2]!.images[0]!.data).equals(Buffer.from(generated.data))).toBe(true);
  });

  it('fails, for good, a training whose loss stops being a number', async () => {
    await expect(builtinTrainer.train(spec({ steps: 50, learningRate: 1e30, checkpointEvery: 0 }), hooks())).rejects.toMatchObject({
      code: 'TRAINING_DIVERGED',
      retryable: false,
      message: expect.stringContaining('learning rate 1e+30 is too high'),
    });
  });

  it('refuses a dataset that is not what its manifest lists, and a base model of another pipeline', async () => {
    const broken = path.join(root, 'broken-dataset');
    await writeTrainingDataset(broken, 2);
    await fs.writeFile(path.join(broken, '002.txt'), 'something else');
    await expect(builtinTrainer.train(spec({ datasetDir: broken }), hooks())).rejects.toMatchObject({ code: 'DATASET_INVALID', retryable: false, message: expect.stringContaining('002.txt') });
    await expect(builtinTrainer.train(spec({ baseModel: { dir: modelDir, pipeline: 'stable-diffusion-onnx' } }), hooks())).rejects.toMatchObject({ code: 'TRAINING_INVALID' });
  });
});

describe('captions', () => {
  it('get the trigger word first unless they already hold it as a word', () => {
    expect(captionWithTrigger('a red square', 'kln')).toBe('kln, a red square');
    expect(captionWithTrigger('photo of KLN at the beach', 'kln')).toBe('photo of KLN at the beach');
    expect(captionWithTrigger('klnx at the beach', 'kln')).toBe('kln, klnx at the beach');
    expect(captionWithTrigger('', 'kln')).toBe('kln');
    expect(captionWithTrigger('a c++ programmer', 'c++')).toBe('a c++ programmer');
  });
});
