/**
 * The builtin trainer's speed and learning, without the service:
 * `npm run bench:training [-- --steps 200 --resolution 32 --batch 4 --rank 8 --lr 0.01]`.
 *
 * On a 10-image dataset (distinct pictures drawn with sharp) it trains a LoRA for the built-in
 * model and prints
 * - training steps per second (each step: forward and backward passes over batch × resolution²
 *   pixels and an AdamW update), beside the anchor measured in the same run: one forward pass
 *   of the same denoiser graph over the same pixels through onnxruntime (`session.run`), and
 *   Kiln's own forward pass alone, so the ratios say what Kiln's TypeScript costs;
 * - the loss curve (mean of each tenth of the steps);
 * - how close generations with the adapter (each caption, trigger word first, two seeds, through
 *   the real pipeline with the adapter merged) come to the dataset's images, with and without it;
 * - the time from the end of training to the first image generated with the adapter (merge,
 *   session, 256×256, 8 steps), the in-process part of trainLora → generate.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { readLoraAdapter } from '../src/models/lora-adapter.js';
import { loraPatcher } from '../src/models/lora-merge.js';
import { BUILTIN_DEFAULTS, BUILTIN_FILES } from '../src/pipelines/builtin/model-files.js';
import { loadBuiltinPipeline, pixelCoordinates } from '../src/pipelines/builtin/pipeline.js';
import { SeededRandom } from '../src/pipelines/random.js';
import { denoisingPass } from '../src/trainers/builtin/denoiser-backprop.js';
import { loraBaseWeights, readDenoiserWeights } from '../src/trainers/builtin/denoiser-weights.js';
import { builtinTrainer } from '../src/trainers/builtin/trainer.js';
import { captionWithTrigger } from '../src/trainers/dataset-folder.js';
import { writeBuiltinModel, writeTrainingDataset } from '../test/support/training-datasets.js';
import { parseCommandLine } from '../src/cli/command-line.js';

const USAGE = `usage: npm run bench:training [-- --steps 200 --resolution 32 --batch 4 --rank 8 --lr 0.01]
  --steps N       training steps (default 200)
  --resolution PX the side images are trained at (default 32)
  --batch N       images a step (default 4)
  --rank N        the adapter's rank (default 8)
  --lr X          the learning rate (default 0.01)
  --help          this text`;
const { values: args } = parseCommandLine(USAGE, {
  steps: { type: 'string', default: '200' },
  resolution: { type: 'string', default: '32' },
  batch: { type: 'string', default: '4' },
  rank: { type: 'string', default: '8' },
  lr: { type: 'string', default: '0.01' },
});
const steps = Number(args.steps);
const resolution = Number(args.resolution);
const batch = Number(args.batch);
const rank = Number(args.rank);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-bench-training-'));
const modelDir = await writeBuiltinModel(path.join(root, 'model'));
const datasetDir = path.join(root, 'dataset');
const pictures = await writeTrainingDataset(datasetDir, 10, 128);
const trigger = 'kilnstyle';
console.log(`builtin trainer: 10 images at ${resolution}×${resolution}, batch ${batch} (${batch * resolution * resolution} pixels a step), rank ${rank}, lr ${args.lr}, ${steps} steps`);

// Anchor: the same network's forward pass over the same pixels, through onnxruntime, in this run.
const denoiserBytes = new Uint8Array(await fs.readFile(path.join(modelDir, BUILTIN_FILES.denoiser)));
const pixels = resolution * resolution;
const rng = new SeededRandom(1, 1);
const coords = Float32Array.from(pixelCoordinates(resolution, resolution));
const session = await ort.InferenceSession.create(denoiserBytes, { intraOpNumThreads: 1 });
const feeds = {
  coords: new ort.Tensor('float32', coords, [1, pixels, 3]),
  state: new ort.Tensor('float32', rng.normals(batch * pixels * 3), [batch, pixels, 3]),
  cond: new ort.Tensor('float32', rng.normals(batch * 64), [batch, 1, 64]),
  noise_level: new ort.Tensor('float32', Float32Array.of(0.5), [1, 1, 1]),
  mix: new ort.Tensor('float32', Float32Array.of(1), [1, 1, 1]),
};
const base = readDenoiserWeights(denoiserBytes);
const examples = Array.from({ length: batch }, () => ({
  target: rng.normals(pixels * 3, 0.5),
  state: Float64Array.from(rng.normals(pixels * 3)),
  cond: Float64Array.from(rng.normals(64)),
  noiseLevel: 0.5,
}));
const coords64 = Float64Array.from(coords);
const ortRuns: number[] = [];
const ownForward: number[] = [];
for (let r = 0; r < 30; r++) {
  let t = performance.now();
  await session.run(feeds);
  ortRuns.push(performance.now() - t);
  t = performance.now();
  denoisingPass(base, loraBaseWeights(base), coords64, examples, { gradients: false });
  ownForward.push(performance.now() - t);
}
await session.release();

const stepTimes: number[] = [];
let last = performance.now();
const result = await builtinTrainer.train(
  {
    datasetDir,
    baseModel: { dir: modelDir, pipeline: 'builtin' },
    triggerWord: trigger,
    name: 'bench',
    steps,
    rank,
    alpha: rank,
    learningRate: Number(args.lr),
    resolution,
    batchSize: batch,
    seed: 1,
    workDir: path.join(root, 'work'),
    checkpointEvery: 0,
    sampleEvery: 0,
  },
  {
    signal: new AbortController().signal,
    onStep() {
      const now = performance.now();
      stepTimes.push(now - last);
      last = now;
    },
    onSample() {},
    onCheckpoint() {},
  },
);
const trained = performance.now();

const generate = async (prompt: string, seed: number, size: number, withAdapter: boolean) => {
  const graphPatch = withAdapter ? loraPatcher(await readLoraAdapter(result.adapterPath), 1, { file: BUILTIN_FILES.denoiser }) : undefined;
  const pipeline = await loadBuiltinPipeline(modelDir, { executionProviders: ['cpu'], ...(graphPatch && { graphPatches: [graphPatch] }) });
  try {
    const request = { prompt, negativePrompt: null, steps: 8, guidanceScale: BUILTIN_DEFAULTS.guidanceScale, width: size, height: size, seed, numImages: 1 };
    return (await pipeline.generate(request, { signal: new AbortController().signal, onStep() {} })).images[0]!.data;
  } finally {
    await pipeline.release();
  }
};
await generate(captionWithTrigger(pictures[0]!.caption, trigger), 1, 256, true);
const firstImageMs = performance.now() - trained;

const step = median(stepTimes);
const ortMs = median(ortRuns);
const ownMs = median(ownForward);
console.log(`\n  training step             ${step.toFixed(1)} ms median → ${(1000 / step).toFixed(1)} steps/s (${((steps * 1000) / stepTimes.reduce((a, b) => a + b, 0)).toFixed(1)} overall)`);
console.log(`  anchor: onnxruntime forward of the same pixels   ${ortMs.toFixed(2)} ms median (1 thread)`);
console.log(`  Kiln's own forward pass                          ${ownMs.toFixed(2)} ms median (${(ownMs / ortMs).toFixed(1)}× onnxruntime)`);
console.log(`  training step / onnxruntime forward              ${(step / ortMs).toFixed(1)}×`);

const losses = result.lossCurve.map((p) => p.loss);
const tenth = Math.max(1, Math.floor(losses.length / 10));
const curve = Array.from({ length: Math.ceil(losses.length / tenth) }, (_, i) => losses.slice(i * tenth, (i + 1) * tenth)).map((xs) => xs.reduce((a, b) => a + b, 0) / xs.length);
console.log(`\n  loss (mean of each tenth)  ${curve.map((l) => l.toFixed(3)).join(' → ')}`);

const meanColour = (d: Uint8Array) => [0, 1, 2].map((c) => d.filter((_, i) => i % 3 === c).reduce((a, b) => a + b, 0) / (d.length / 3));
const colourDistance = (a: Uint8Array, b: Uint8Array) => Math.hypot(...meanColour(a).map((v, i) => v - meanColour(b)[i]!));
const pixelDistance = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;
const sums = { colourWithout: 0, colourWith: 0, pixelWithout: 0, pixelWith: 0 };
for (const [i, picture] of pictures.entries()) {
  const target = await sharp(path.join(datasetDir, `${String(i + 1).padStart(3, '0')}.png`)).resize(resolution, resolution).removeAlpha().raw().toBuffer();
  for (const seed of [11, 12]) {
    const prompt = captionWithTrigger(picture.caption, trigger);
    const without = await generate(prompt, seed, resolution, false);
    const withAdapter = await generate(prompt, seed, resolution, true);
    sums.colourWithout += colourDistance(without, target);
    sums.colourWith += colourDistance(withAdapter, target);
    sums.pixelWithout += pixelDistance(without, target);
    sums.pixelWith += pixelDistance(withAdapter, target);
  }
}
const n = pictures.length * 2;
console.log(`\n  distance of generations to their caption's image (0…255; ${n} images, caption with trigger word, 8 steps):`);
console.log(`    mean colour distance     without ${(sums.colourWithout / n).toFixed(1)}   with the adapter ${(sums.colourWith / n).toFixed(1)}`);
console.log(`    mean pixel difference    without ${(sums.pixelWithout / n).toFixed(1)}   with the adapter ${(sums.pixelWith / n).toFixed(1)}`);
console.log(`\n  end of training → first 256×256 image with the adapter (merge, session, 8 steps): ${firstImageMs.toFixed(0)} ms`);
await fs.rm(root, { recursive: true, force: true });
