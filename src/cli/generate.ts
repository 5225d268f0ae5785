/**
 * Runs a model folder's pipeline without the service, for scripts, benchmarks and comparison
 * with reference implementations. The pipeline is chosen from the folder (FAMILIES below):
 *
 *   npm run generate -- --model DIR --prompt "..." [--negative "..."] [--steps N]
 *     [--scheduler euler|euler_ancestral|ddim|lcm|pndm] [--guidance G] [--width W --height H]
 *     [--seed S | --latents FILE] [--provider cpu,webgpu,...] --out FILE.png [--raw FILE.f32]
 *
 * and for SDXL, prompts as precomputed embeddings (the reference checks; folders without text
 * encoders) and its size conditioning:
 *
 *   npm run generate -- --model DIR --prompt-embeds F --pooled-prompt-embeds F
 *     [--negative-prompt-embeds F --negative-pooled-prompt-embeds F] --latents F --steps N
 *     --guidance G --width W --height H [--original-size H,W] [--crops-coords-top-left T,L]
 *     [--target-size H,W] --out F.png --raw F.f32
 *
 * Unset options take the model's defaults. Embedding files are raw little-endian float32 in
 * diffusers' shapes: prompt embeddings [1, L, D] (D is what the model's UNet takes), pooled
 * ones [1, P]; without negative ones and with guidance above 1, the negative half is zeros
 * where the model says force_zeros_for_empty_prompt, as in diffusers. `--latents` is raw
 * little-endian float32 [n, C, h/8, w/8] standard-normal noise, before scaling by the
 * scheduler's initial σ (diffusers' `latents=`); n images are made. `--raw` writes the decoded
 * images as little-endian float32 [n, h, w, 3] in [0, 1], before rounding to 8 bits. With
 * n > 1, image i goes to FILE-i.png.
 *
 * The folder decides the pipeline: FLUX.1 folders have a form of their own (cli/generate-flux.ts).
 */
import fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Float32Tensor, GenerateHooks, GenerateRequest, GenerateResult, LoadOptions, PromptEmbeddings } from '../pipelines/pipeline.js';
import { loadStableDiffusionPipeline } from '../pipelines/stable-diffusion/pipeline.js';
import { isStableDiffusionXLFolder } from '../pipelines/stable-diffusion-xl/model-folder.js';
import { loadStableDiffusionXLPipeline } from '../pipelines/stable-diffusion-xl/pipeline.js';
import { FLUX_USAGE, isFluxModel, runFluxCli } from './generate-flux.js';
import { AUDIO_USAGE, runAudioGenerate } from './generate-audio.js';
import { writeGenerated } from './generated-files.js';

if (await isFluxModel(process.argv.slice(2))) process.exit(await runFluxCli(process.argv.slice(2)));

// Music models have a form of their own (generate-audio.ts).
if (await runAudioGenerate(process.argv.slice(2))) process.exit(0);

/** What the CLI needs of a loaded pipeline. */
interface CliPipeline {
  folder: { defaults: { steps: number; guidanceScale: number; width: number; height: number } };
  /**
   * Width D of the prompt embeddings [1, L, D] it takes (null where the model does not say), for
   * pipelines that take embeddings and size conditioning; absent for the others.
   */
  embeddingWidth?: number | null;
  generateWithPixels(request: GenerateRequest, hooks: GenerateHooks): Promise<GenerateResult & { pixels: Float32Array[] }>;
  release(): Promise<void>;
}

interface Family {
  pipeline: string;
  recognise(dir: string): Promise<boolean>;
  load(dir: string, options: LoadOptions): Promise<CliPipeline>;
  /** Channels of the latents `--latents` holds. */
  latentChannels: number;
}

/** Model families, in the order they are tried; the last recognises any folder. */
const FAMILIES: Family[] = [
  { pipeline: 'stable-diffusion-xl-onnx', recognise: isStableDiffusionXLFolder, load: loadStableDiffusionXLPipeline, latentChannels: 4 },
  { pipeline: 'stable-diffusion-onnx', recognise: async () => true, load: loadStableDiffusionPipeline, latentChannels: 4 },
];

const USAGE = [
  'usage: generate --model DIR (--prompt TEXT | --prompt-embeds F --pooled-prompt-embeds F) [--negative TEXT]',
  '         [--negative-prompt-embeds F --negative-pooled-prompt-embeds F] [--steps N] [--scheduler NAME] [--guidance G]',
  '         [--width W --height H] [--original-size H,W] [--crops-coords-top-left T,L] [--target-size H,W]',
  '         [--seed S | --latents FILE] [--provider LIST] --out FILE.png [--raw FILE.f32]',
].join('\n');

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function parse() {
  try {
    return parseArgs({
      options: {
        model: { type: 'string' },
        prompt: { type: 'string' },
        negative: { type: 'string' },
        'prompt-embeds': { type: 'string' },
        'pooled-prompt-embeds': { type: 'string' },
        'negative-prompt-embeds': { type: 'string' },
        'negative-pooled-prompt-embeds': { type: 'string' },
        steps: { type: 'string' },
        scheduler: { type: 'string' },
        guidance: { type: 'string' },
        width: { type: 'string' },
        height: { type: 'string' },
        'original-size': { type: 'string' },
        'crops-coords-top-left': { type: 'string' },
        'target-size': { type: 'string' },
        seed: { type: 'string' },
        latents: { type: 'string' },
        provider: { type: 'string', default: 'cpu' },
        out: { type: 'string' },
        raw: { type: 'string' },
        help: { type: 'boolean' },
      },
    });
  } catch (err) {
    return fail((err as Error).message);
  }
}
const { values: args } = parse();

function number(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) fail(`--${name} must be a number`);
  return n;
}

function pair(name: string): [number, number] | undefined {
  const value = args[name as keyof typeof args] as string | undefined;
  if (value === undefined) return undefined;
  const parts = value.split(',').map(Number);
  if (parts.length !== 2 || !parts.every(Number.isFinite)) fail(`--${name} must be two numbers, as ${name === 'crops-coords-top-left' ? 'T,L' : 'H,W'}`);
  return parts as [number, number];
}

async function float32File(file: string): Promise<Float32Array> {
  const bytes = await fs.readFile(file);
  if (bytes.byteLength % 4 !== 0) fail(`${file} is not raw float32 (${bytes.byteLength} bytes)`);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** An embeddings file as [1, L, width], or as [1, P] when `width` is null (pooled). */
async function embeddingsFile(option: string, width: number | null): Promise<Float32Tensor> {
  const data = await float32File(args[option as keyof typeof args] as string);
  if (width === null) return { data, dims: [1, data.length] };
  if (data.length % width !== 0 || data.length === 0) fail(`--${option} holds ${data.length} floats, not [1, L, ${width}]`);
  return { data, dims: [1, data.length / width, width] };
}

if (args.help) {
  process.stdout.write(`${USAGE}\n${FLUX_USAGE}\n${AUDIO_USAGE}\n`);
  process.exit(0);
}
const embedded = args['prompt-embeds'] !== undefined;
if (!args.model || !args.out || (args.prompt === undefined && !embedded)) fail('--model, --out and --prompt (or --prompt-embeds) are required');
if (embedded !== (args['pooled-prompt-embeds'] !== undefined)) fail('give --prompt-embeds and --pooled-prompt-embeds together');
if ((args['negative-prompt-embeds'] !== undefined) !== (args['negative-pooled-prompt-embeds'] !== undefined)) fail('give --negative-prompt-embeds and --negative-pooled-prompt-embeds together');
if (args['negative-prompt-embeds'] !== undefined && !embedded) fail('--negative-prompt-embeds needs --prompt-embeds');
if (args.seed !== undefined && args.latents !== undefined) fail('give --seed or --latents, not both');
const sizeConditioning = { originalSize: pair('original-size'), cropsCoordsTopLeft: pair('crops-coords-top-left'), targetSize: pair('target-size') };

let family: Family | undefined;
for (const f of FAMILIES) if (!family && (await f.recognise(args.model))) family = f;
if (!family) fail(`${args.model} is not a model folder Kiln can run`);
process.stderr.write(`${family.pipeline}: ${args.model}\n`);

const pipeline = await family.load(args.model, { executionProviders: args.provider.split(',') });
try {
  if (pipeline.embeddingWidth === undefined && (embedded || Object.values(sizeConditioning).some(Boolean))) {
    fail(`${args.model} is a ${family.pipeline} model, which takes no prompt embeddings or size conditioning`);
  }
  const d = pipeline.folder.defaults;
  const width = number('width', args.width, d.width);
  const height = number('height', args.height, d.height);
  let latents: Float32Array | undefined;
  let numImages = 1;
  if (args.latents) {
    latents = await float32File(args.latents);
    const perImage = family.latentChannels * (width / 8) * (height / 8);
    numImages = latents.length / perImage;
    if (!Number.isInteger(numImages) || numImages < 1) fail(`--latents holds ${latents.length} floats, not a whole number of [${family.latentChannels}, ${height / 8}, ${width / 8}] latents`);
  }
  let embeddings: PromptEmbeddings | undefined;
  if (embedded) {
    const embeddingWidth = pipeline.embeddingWidth ?? null;
    if (embeddingWidth === null) fail(`the model's UNet does not say how wide its prompt embeddings are, so --prompt-embeds cannot be read`);
    embeddings = {
      prompt: await embeddingsFile('prompt-embeds', embeddingWidth),
      pooled: await embeddingsFile('pooled-prompt-embeds', null),
      ...(args['negative-prompt-embeds'] !== undefined
        ? { negative: await embeddingsFile('negative-prompt-embeds', embeddingWidth), negativePooled: await embeddingsFile('negative-pooled-prompt-embeds', null) }
        : {}),
    };
  }
  const seed = number('seed', args.seed, Math.floor(Math.random() * 2 ** 32));
  const started = performance.now();
  const result = await pipeline.generateWithPixels(
    {
      prompt: args.prompt ?? '',
      negativePrompt: args.negative ?? null,
      steps: number('steps', args.steps, d.steps),
      guidanceScale: number('guidance', args.guidance, d.guidanceScale),
      scheduler: args.scheduler ?? null,
      width,
      height,
      seed,
      numImages,
      ...(latents ? { latents } : {}),
      ...(embeddings ? { embeddings } : {}),
      ...Object.fromEntries(Object.entries(sizeConditioning).filter(([, v]) => v !== undefined)),
    },
    {
      signal: new AbortController().signal,
      onStep: ({ index, count }) => process.stderr.write(`\rstep ${index}/${count}`),
    },
  );
  process.stderr.write('\n');
  await writeGenerated(result, args.out, args.raw, started);
} catch (err) {
  // Refusals (a bad size, mismatched embeddings) are the user's to fix: say them without a stack.
  if (err instanceof Error && 'code' in err && err.code === 'BAD_USER_INPUT') fail(err.message);
  throw err;
} finally {
  await pipeline.release();
}
