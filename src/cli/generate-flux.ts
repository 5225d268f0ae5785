/**
 * `npm run generate` for FLUX.1 folders (the folder decides: cli/generate.ts hands them here):
 *
 *   npm run generate -- --model DIR (--prompt TEXT | --prompt-embeds F --pooled-prompt-embeds F)
 *     [--steps N] [--guidance G] [--width W --height H] [--seed S | --latents F]
 *     [--provider cpu,...] --out FILE.png [--raw FILE.f32]
 *
 * Unset options take the model's defaults. Embedding files are raw little-endian float32 in
 * diffusers' shapes: `prompt_embeds` [1, L, D] (L follows from the file's length and the
 * model's D), `pooled_prompt_embeds` [1, P]. `--latents` is standard-normal noise in the
 * unpacked shape [n, 16, H/8, W/8] (diffusers' `latents=` before packing); n images are made.
 * `--raw` writes the decoded images as float32 [n, H, W, 3] in [0, 1], before rounding to 8 bits.
 * FLUX.1 runs no classifier-free guidance: negative prompts are accepted and ignored.
 */
import fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { KilnError } from '../errors.js';
import { LATENT_CHANNELS, latentSide } from '../pipelines/flux/latents.js';
import { looksLikeFluxFolder } from '../pipelines/flux/model-folder.js';
import { loadFluxPipeline } from '../pipelines/flux/pipeline.js';
import type { PromptEmbeddings } from '../pipelines/pipeline.js';
import { writeGenerated } from './generated-files.js';

export const FLUX_USAGE =
  'usage (FLUX.1 folders): generate --model DIR (--prompt TEXT | --prompt-embeds F --pooled-prompt-embeds F) [--steps N] [--guidance G] ' +
  '[--width W --height H] [--seed S | --latents F] [--provider LIST] --out FILE.png [--raw FILE.f32]';

const OPTIONS = {
  model: { type: 'string' },
  prompt: { type: 'string' },
  'prompt-embeds': { type: 'string' },
  'pooled-prompt-embeds': { type: 'string' },
  negative: { type: 'string' },
  'negative-prompt-embeds': { type: 'string' },
  'negative-pooled-prompt-embeds': { type: 'string' },
  steps: { type: 'string' },
  guidance: { type: 'string' },
  width: { type: 'string' },
  height: { type: 'string' },
  seed: { type: 'string' },
  latents: { type: 'string' },
  provider: { type: 'string', default: 'cpu' },
  out: { type: 'string' },
  raw: { type: 'string' },
  help: { type: 'boolean' },
} as const;

/** Whether the command line's `--model` names a FLUX.1 folder. */
export async function isFluxModel(argv: string[]): Promise<boolean> {
  const { values } = parseArgs({ args: argv, options: { model: { type: 'string' } }, strict: false });
  return typeof values.model === 'string' && looksLikeFluxFolder(values.model);
}

class UsageError extends Error {}

/** Runs the command line; returns the process's exit code. */
export async function runFluxCli(argv: string[]): Promise<number> {
  try {
    await generate(argv);
    return 0;
  } catch (err) {
    // parseArgs refuses unknown or malformed options with a TypeError coded ERR_PARSE_ARGS_….
    if (err instanceof UsageError || (err instanceof TypeError && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`${err.message}\n${FLUX_USAGE}\n`);
      return 2;
    }
    if (err instanceof KilnError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function generate(argv: string[]) {
  const { values: args } = parseArgs({ args: argv, options: OPTIONS });
  if (args.help) {
    process.stdout.write(`${FLUX_USAGE}\n`);
    return;
  }
  const embedsGiven = args['prompt-embeds'] !== undefined || args['pooled-prompt-embeds'] !== undefined;
  if (!args.model || !args.out || (args.prompt === undefined && !embedsGiven)) throw new UsageError('--model, --out and --prompt (or --prompt-embeds with --pooled-prompt-embeds) are required');
  if (embedsGiven && (!args['prompt-embeds'] || !args['pooled-prompt-embeds'])) throw new UsageError('give --prompt-embeds and --pooled-prompt-embeds together');
  if (args.seed !== undefined && args.latents !== undefined) throw new UsageError('give --seed or --latents, not both');
  if (args.negative !== undefined || args['negative-prompt-embeds'] !== undefined || args['negative-pooled-prompt-embeds'] !== undefined) {
    process.stderr.write('FLUX.1 runs no classifier-free guidance: the negative prompt is ignored\n');
  }

  const pipeline = await loadFluxPipeline(args.model, { executionProviders: args.provider.split(',') });
  try {
    const d = pipeline.folder.defaults;
    const width = number('width', args.width, d.width);
    const height = number('height', args.height, d.height);
    let embeddings: PromptEmbeddings | undefined;
    if (args['prompt-embeds'] && args['pooled-prompt-embeds']) {
      const prompt = await floats(args['prompt-embeds']);
      const pooled = await floats(args['pooled-prompt-embeds']);
      const stateWidth = pipeline.folder.jointAttentionDim;
      if (stateWidth === null) throw new UsageError("this model's transformer does not say how wide its prompt embeddings are");
      if (prompt.length % stateWidth !== 0) throw new UsageError(`--prompt-embeds holds ${prompt.length} floats, not a whole number of ${stateWidth}-wide states`);
      embeddings = { prompt: { data: prompt, dims: [1, prompt.length / stateWidth, stateWidth] }, pooled: { data: pooled, dims: [1, pooled.length] } };
    }
    let latents: Float32Array | undefined;
    let numImages = 1;
    if (args.latents) {
      latents = await floats(args.latents);
      const perImage = LATENT_CHANNELS * latentSide(height) * latentSide(width);
      numImages = latents.length / perImage;
      if (!Number.isInteger(numImages) || numImages < 1) {
        throw new UsageError(`--latents holds ${latents.length} floats, not a whole number of [${LATENT_CHANNELS}, ${latentSide(height)}, ${latentSide(width)}] latents`);
      }
    }
    const seed = number('seed', args.seed, Math.floor(Math.random() * 2 ** 32));
    const started = performance.now();
    const result = await pipeline.generateWithPixels(
      {
        prompt: args.prompt ?? '',
        negativePrompt: null,
        steps: number('steps', args.steps, d.steps),
        guidanceScale: number('guidance', args.guidance, d.guidanceScale),
        width,
        height,
        seed,
        numImages,
        ...(latents ? { latents } : {}),
        ...(embeddings ? { embeddings } : {}),
      },
      { signal: new AbortController().signal, onStep: ({ index, count }) => process.stderr.write(`\rstep ${index}/${count}`) },
    );
    process.stderr.write('\n');
    await writeGenerated(result, args.out, args.raw, started);
  } finally {
    await pipeline.release();
  }
}

function number(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number`);
  return n;
}

async function floats(file: string): Promise<Float32Array> {
  const bytes = await fs.readFile(file);
  if (bytes.byteLength % 4 !== 0) throw new UsageError(`${file} is not raw float32 (${bytes.byteLength} bytes)`);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}
