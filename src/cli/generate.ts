/**
 * Runs the Stable Diffusion pipeline on a model folder without the service, for scripts,
 * benchmarks and comparison with reference implementations:
 *
 *   npm run generate -- --model DIR --prompt "..." [--negative "..."] [--steps N]
 *     [--scheduler euler|euler_ancestral|ddim|lcm|pndm] [--guidance G] [--width W --height H]
 *     [--seed S | --latents FILE] [--provider cpu,webgpu,...] --out FILE.png [--raw FILE.f32]
 *
 * Unset options take the model's defaults. `--latents` is raw little-endian float32
 * [n, 4, h/8, w/8] standard-normal noise, before scaling by the scheduler's initial σ (diffusers'
 * `latents=`); n images are made. `--raw` writes the decoded images as little-endian float32
 * [n, h, w, 3] in [0, 1], before rounding to 8 bits. With n > 1, image i goes to FILE-i.png.
 */
import fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { loadStableDiffusionPipeline } from '../pipelines/stable-diffusion/pipeline.js';
import { runAudioGenerate } from './generate-audio.js';

const USAGE =
  'usage: generate --model DIR --prompt TEXT [--negative TEXT] [--steps N] [--scheduler NAME] [--guidance G] ' +
  '[--width W --height H] [--seed S | --latents FILE] [--provider LIST] --out FILE.png [--raw FILE.f32]';

// Music models have a form of their own (generate-audio.ts).
if (await runAudioGenerate(process.argv.slice(2))) process.exit(0);

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    prompt: { type: 'string' },
    negative: { type: 'string' },
    steps: { type: 'string' },
    scheduler: { type: 'string' },
    guidance: { type: 'string' },
    width: { type: 'string' },
    height: { type: 'string' },
    seed: { type: 'string' },
    latents: { type: 'string' },
    provider: { type: 'string', default: 'cpu' },
    out: { type: 'string' },
    raw: { type: 'string' },
    help: { type: 'boolean' },
  },
});

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function number(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) fail(`--${name} must be a number`);
  return n;
}

if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (!args.model || args.prompt === undefined || !args.out) fail('--model, --prompt and --out are required');
if (args.seed !== undefined && args.latents !== undefined) fail('give --seed or --latents, not both');

const pipeline = await loadStableDiffusionPipeline(args.model, { executionProviders: args.provider.split(',') });
try {
  const d = pipeline.folder.defaults;
  const width = number('width', args.width, d.width);
  const height = number('height', args.height, d.height);
  let latents: Float32Array | undefined;
  let numImages = 1;
  if (args.latents) {
    const bytes = await fs.readFile(args.latents);
    latents = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    numImages = latents.length / (4 * (width / 8) * (height / 8));
    if (!Number.isInteger(numImages) || numImages < 1) fail(`--latents holds ${latents.length} floats, not a whole number of [4, ${height / 8}, ${width / 8}] latents`);
  }
  const seed = number('seed', args.seed, Math.floor(Math.random() * 2 ** 32));
  const started = performance.now();
  const result = await pipeline.generateWithPixels(
    {
      prompt: args.prompt,
      negativePrompt: args.negative ?? null,
      steps: number('steps', args.steps, d.steps),
      guidanceScale: number('guidance', args.guidance, d.guidanceScale),
      scheduler: args.scheduler ?? null,
      width,
      height,
      seed,
      numImages,
      ...(latents ? { latents } : {}),
    },
    {
      signal: new AbortController().signal,
      onStep: ({ index, count }) => process.stderr.write(`\rstep ${index}/${count}`),
    },
  );
  process.stderr.write('\n');
  for (const [i, image] of result.images.entries()) {
    const file = result.images.length === 1 ? args.out : args.out.replace(/(\.png)?$/i, `-${i}.png`);
    await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toFile(file);
    process.stdout.write(`${file} (seed ${image.seed})\n`);
  }
  if (args.raw) {
    const raw = new Float32Array(result.pixels.reduce((n, p) => n + p.length, 0));
    result.pixels.forEach((p, i) => raw.set(p, i * p.length));
    await fs.writeFile(args.raw, new Uint8Array(raw.buffer));
    process.stdout.write(`${args.raw} (float32 [${result.pixels.length}, ${height}, ${width}, 3])\n`);
  }
  process.stdout.write(`encode ${result.encodeMs.toFixed(0)} ms, generate ${result.generateMs.toFixed(0)} ms, total ${(performance.now() - started).toFixed(0)} ms\n`);
} finally {
  await pipeline.release();
}
