import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setImmediate } from 'node:timers/promises';
import * as ort from 'onnxruntime-node';
import { JobFailure } from '../../errors.js';
import { readLoraAdapter } from '../../models/lora-adapter.js';
import { BUILTIN, BUILTIN_DEFAULTS, BUILTIN_FILES } from '../../pipelines/builtin/model-files.js';
import { builtinStyleVector, encodePrompt, pixelCoordinates } from '../../pipelines/builtin/pipeline.js';
import { SeededRandom } from '../../pipelines/random.js';
import { captionWithTrigger, type DatasetFolder, readDatasetFolder } from '../dataset-folder.js';
import { checkTrainingSpec } from '../spec-check.js';
import type { Trainer, TrainingHooks, TrainingResult, TrainingSpec } from '../trainer.js';
import { kilnTrainingMetadata, tagFrequency } from '../training-metadata.js';
import { AdamW } from './adamw.js';
import { latestCheckpoint, writeCheckpoint } from './checkpoints.js';
import { type DenoisingExample, denoisingPass } from './denoiser-backprop.js';
import { loraBaseWeights, readDenoiserWeights } from './denoiser-weights.js';
import { LoraParameters } from './lora-parameters.js';
import { renderBuiltinSamples } from './samples.js';
import { loadTrainingImages } from './training-images.js';

/**
 * Trains a LoRA for Kiln's built-in model on the CPU, in TypeScript: the denoising objective of
 * the pipeline's own sampler. That sampler starts from noise and, at noise level t, feeds the
 * denoiser the state t·ε + (1 − t)·x (for estimates that are right) and moves towards its
 * estimate of the clean image x; so each training example is a dataset image x at a noise level
 * t drawn uniformly from (0, 1], with fresh noise ε and a style vector from a random seed, and
 * the loss is the squared error of the estimate against x. The caption's vector is the one the
 * pipeline computes for it at the default guidance without a negative prompt, so generating
 * with the caption (trigger word included) asks for what was trained.
 *
 * Gradients come from denoiser-backprop.ts, AdamW (weight decay 0.01, constant learning rate)
 * updates the LoRA's A and B matrices on cond, layer1, layer2, layer3 and to_rgb. Everything
 * random derives from (seed, step) or (seed, epoch): a resumed training repeats exactly what the
 * uninterrupted one would have done.
 */
export const builtinTrainer: Trainer = {
  name: 'builtin',
  requirements: { pipelines: ['builtin'], device: 'cpu' },
  train: trainBuiltin,
};

const ADAPTER_FILE = 'adapter.safetensors';
const FINGERPRINT_VERSION = 1;

async function trainBuiltin(spec: TrainingSpec, hooks: TrainingHooks): Promise<TrainingResult> {
  checkTrainingSpec(builtinTrainer, spec);
  const dataset = await readDatasetFolder(spec.datasetDir);
  const modelDir = spec.baseModel.dir;
  const [denoiserBytes, encoderBytes] = await Promise.all(
    [BUILTIN_FILES.denoiser, BUILTIN_FILES.textEncoder].map(async (f) => new Uint8Array(await fs.readFile(path.join(modelDir, f)))),
  );
  const base = readDenoiserWeights(denoiserBytes!);
  const baseMatrices = loraBaseWeights(base);
  const captions = dataset.items.map((item) => captionWithTrigger(item.caption, spec.triggerWord));
  const promptVectors = await encodeCaptions(encoderBytes!, captions);
  const targets = await loadTrainingImages(dataset.items, spec.resolution);
  const coords = Float64Array.from(pixelCoordinates(spec.resolution, spec.resolution));
  const samplePrompts = spec.samplePrompts ?? [spec.triggerWord, captions[0]!];

  const fingerprint = trainingFingerprint(spec, dataset, denoiserBytes!, encoderBytes!);
  const checkpoint = await latestCheckpoint(spec.workDir, fingerprint);
  const params = checkpoint ? new LoraParameters(spec.rank, spec.alpha, checkpoint.lora) : LoraParameters.initial(spec.rank, spec.alpha, spec.seed);
  const optimiser = new AdamW(params.values.length, { learningRate: spec.learningRate }, checkpoint?.step ?? 0, checkpoint ?? undefined);
  const losses = checkpoint?.losses ?? [];
  const startStep = checkpoint?.step ?? 0;
  const batches = new BatchDrawer(spec, targets, promptVectors);

  const started = performance.now();
  for (let step = startStep + 1; step <= spec.steps; step++) {
    // A step is synchronous work: yielding between steps lets the process hear a cancel (and its parent) meanwhile.
    await setImmediate();
    hooks.signal.throwIfAborted();
    const { loss, gradients } = denoisingPass(base, params.patched(baseMatrices), coords, batches.draw(step), { gradients: true });
    if (!Number.isFinite(loss)) throw new JobFailure('TRAINING_DIVERGED', `the loss is ${loss} at step ${step}: the learning rate ${spec.learningRate} is too high for this dataset`, false);
    optimiser.update(params.values, params.gradients(gradients!));
    losses.push(loss);
    const secondsPerStep = (performance.now() - started) / 1000 / (step - startStep);
    hooks.onStep({ step, totalSteps: spec.steps, loss, learningRate: spec.learningRate, etaSeconds: secondsPerStep * (spec.steps - step) });
    if (spec.checkpointEvery && step % spec.checkpointEvery === 0) {
      const file = await writeCheckpoint(spec.workDir, { step, fingerprint, lora: params.values, m: optimiser.m, v: optimiser.v, losses });
      await hooks.onCheckpoint({ step, path: file });
    }
    if (spec.sampleEvery && step % spec.sampleEvery === 0) {
      const images = await renderBuiltinSamples(modelDir, params.toSafetensors({}), samplePrompts, spec.resolution, spec.seed);
      await hooks.onSample({ step, prompts: samplePrompts, images });
    }
  }
  hooks.signal.throwIfAborted();

  const metadata = { ...builtinSsMetadata(spec, dataset, captions), ...kilnTrainingMetadata('builtin', spec, dataset) };
  const adapterPath = path.join(spec.workDir, ADAPTER_FILE);
  await fs.mkdir(spec.workDir, { recursive: true });
  await fs.writeFile(`${adapterPath}.partial`, params.toSafetensors(metadata));
  await fs.rename(`${adapterPath}.partial`, adapterPath);
  // What generations will read: the file must parse as an adapter Kiln can merge.
  await readLoraAdapter(adapterPath);
  return { adapterPath, metadata, lossCurve: losses.map((loss, i) => ({ step: i + 1, loss })), resumedFromStep: startStep };
}

/**
 * Which images, noise and styles step k trains on. Images are taken in a fresh permutation of
 * the dataset each epoch (seeded by the epoch); t, ε and the style seed come from a generator
 * seeded by the step. Streams: 0 the LoRA's initial values, 2k + 1 step k, 2e + 2 epoch e.
 */
class BatchDrawer {
  private readonly permutations = new Map<number, number[]>();

  constructor(
    private readonly spec: TrainingSpec,
    private readonly targets: Float32Array[],
    private readonly prompts: Float32Array[],
  ) {}

  draw(step: number): DenoisingExample[] {
    const rng = new SeededRandom(this.spec.seed, 2 * step + 1);
    const n = this.targets.length;
    return Array.from({ length: this.spec.batchSize }, (_, b) => {
      const index = (step - 1) * this.spec.batchSize + b;
      const item = this.permutation(Math.floor(index / n))[index % n]!;
      const target = this.targets[item]!;
      const t = 1 - rng.uniform();
      const style = builtinStyleVector(rng.nextUint32());
      const state = new Float64Array(target.length);
      for (let i = 0; i < target.length; i++) state[i] = t * rng.normal() + (1 - t) * target[i]!;
      const cond = new Float64Array(BUILTIN.embed + BUILTIN.style);
      cond.set(this.prompts[item]!, 0);
      cond.set(style, BUILTIN.embed);
      return { target, state, cond, noiseLevel: t };
    });
  }

  private permutation(epoch: number): number[] {
    let order = this.permutations.get(epoch);
    if (!order) {
      this.permutations.clear();
      const rng = new SeededRandom(this.spec.seed, 2 * epoch + 2);
      order = this.targets.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rng.uniform() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      this.permutations.set(epoch, order);
    }
    return order;
  }
}

/** Each caption's conditioning vector, as the pipeline computes it for that prompt at the default guidance. */
async function encodeCaptions(encoderBytes: Uint8Array, captions: string[]): Promise<Float32Array[]> {
  const encoder = await ort.InferenceSession.create(encoderBytes, { intraOpNumThreads: 1 });
  try {
    const vectors: Float32Array[] = [];
    for (const prompt of captions) vectors.push(await encodePrompt(encoder, { prompt, negativePrompt: null, guidanceScale: BUILTIN_DEFAULTS.guidanceScale }));
    return vectors;
  } finally {
    await encoder.release();
  }
}

/** Identifies what is trained: a checkpoint of another dataset, model or parameter set is never resumed. */
function trainingFingerprint(spec: TrainingSpec, dataset: DatasetFolder, denoiser: Uint8Array, encoder: Uint8Array): string {
  const hash = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');
  const { triggerWord, steps, rank, alpha, learningRate, resolution, batchSize, seed } = spec;
  const identity = { v: FINGERPRINT_VERSION, dataset: dataset.sha256, model: [hash(denoiser), hash(encoder)], triggerWord, steps, rank, alpha, learningRate, resolution, batchSize, seed };
  return crypto.createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}

/** kohya's metadata keys, so that tools which read LoRA metadata show the training. */
function builtinSsMetadata(spec: TrainingSpec, dataset: DatasetFolder, captions: string[]): Record<string, string> {
  return {
    ss_output_name: spec.name,
    ss_base_model_version: `kiln_builtin_v${BUILTIN.version}`,
    ss_network_module: 'kiln.builtin_lora',
    ss_network_dim: String(spec.rank),
    ss_network_alpha: String(spec.alpha),
    ss_learning_rate: String(spec.learningRate),
    ss_lr_scheduler: 'constant',
    ss_optimizer: 'AdamW(weight_decay=0.01,betas=(0.9,0.999))',
    ss_max_train_steps: String(spec.steps),
    ss_steps: String(spec.steps),
    ss_seed: String(spec.seed),
    ss_resolution: `(${spec.resolution}, ${spec.resolution})`,
    ss_batch_size_per_device: String(spec.batchSize),
    ss_num_train_images: String(dataset.items.length),
    ss_tag_frequency: tagFrequency(captions, `1_${spec.triggerWord}`),
    'kiln.builtin_version': String(BUILTIN.version),
  };
}
