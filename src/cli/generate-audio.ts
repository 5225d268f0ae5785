/**
 * `npm run generate` for music models (a MusicGen ONNX folder or the built-in music model),
 * handed over to by generate.ts when `--model` names one:
 *
 *   npm run generate -- --model DIR --prompt TEXT [--guidance G] [--max-new-tokens N | --duration S]
 *     [--greedy | --seed S --top-k K --temperature T] [--variant V] [--provider LIST] [--normalize]
 *     --out FILE.wav [--raw FILE.f32] [--codes FILE.json]
 *
 * Unset options take the model's defaults (generation_config.json). `--greedy` is temperature
 * 0. `--raw` writes the decoded waveform as little-endian float32, channels interleaved;
 * `--codes` the generated codes as JSON [codebooks][frames], after the delay pattern is undone.
 */
import { randomInt } from 'node:crypto';
import fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { encodeWav } from '../media/wav.js';
import { KilnError } from '../errors.js';
import { type AudioPipelineEntry, audioPipelineFor } from '../pipelines/audio-pipelines.js';

export const AUDIO_USAGE =
  'usage (music models): generate --model DIR --prompt TEXT [--guidance G] [--max-new-tokens N | --duration SECONDS] ' +
  '[--greedy | --seed S --top-k K --temperature T] [--variant fp32|fp16|quantized|...] [--provider LIST] [--normalize] ' +
  '--out FILE.wav [--raw FILE.f32] [--codes FILE.json]';

const SOFTWARE = 'Kiln';

const OPTIONS = {
  model: { type: 'string' },
  prompt: { type: 'string' },
  guidance: { type: 'string' },
  'max-new-tokens': { type: 'string' },
  duration: { type: 'string' },
  greedy: { type: 'boolean' },
  seed: { type: 'string' },
  'top-k': { type: 'string' },
  temperature: { type: 'string' },
  variant: { type: 'string' },
  provider: { type: 'string', default: 'cpu' },
  normalize: { type: 'boolean' },
  out: { type: 'string' },
  raw: { type: 'string' },
  codes: { type: 'string' },
  help: { type: 'boolean' },
} as const;

/** The value of `--model` in raw arguments, however it is written. */
function modelArgument(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--model') return argv[i + 1];
    if (argv[i]!.startsWith('--model=')) return argv[i]!.slice('--model='.length);
  }
  return undefined;
}

/**
 * Runs the audio form when `--model` names a music model and returns true once done; returns
 * false for generate.ts to go on (its `--help` prints this usage beside the others).
 */
export async function runAudioGenerate(argv: string[]): Promise<boolean> {
  const dir = modelArgument(argv);
  if (dir === undefined) return false;
  const entry = await audioPipelineFor(dir);
  if (!entry) return false;

  try {
    await generateAudio(dir, entry, argv);
  } catch (err) {
    if (!(err instanceof KilnError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  return true;
}

async function generateAudio(dir: string, entry: AudioPipelineEntry, argv: string[]): Promise<void> {
  const fail = (message: string): never => {
    process.stderr.write(`${message}\n${AUDIO_USAGE}\n`);
    process.exit(2);
  };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS });
  } catch (err) {
    return fail((err as Error).message);
  }
  const args = parsed.values;
  const number = (name: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) fail(`--${name} must be a number`);
    return n;
  };
  if (args.help) {
    process.stdout.write(`${AUDIO_USAGE}\n`);
    return;
  }

  if (args.prompt === undefined || !args.out) fail('--prompt and --out are required');
  if (args['max-new-tokens'] !== undefined && args.duration !== undefined) fail('give --max-new-tokens or --duration, not both');

  const declaration = await entry.declare(dir, { variant: args.variant });
  const pipeline = await entry.load(dir, { executionProviders: args.provider.split(','), variant: args.variant });
  try {
    const maxNewTokens = number('max-new-tokens', args['max-new-tokens']);
    const durationSeconds = number('duration', args.duration);
    const seed = number('seed', args.seed) ?? randomInt(2 ** 32);
    const started = performance.now();
    const result = await pipeline.generate(
      {
        prompt: args.prompt!,
        ...(maxNewTokens !== undefined ? { maxNewTokens } : { durationSeconds: durationSeconds ?? declaration.durationSeconds.default }),
        guidanceScale: number('guidance', args.guidance) ?? declaration.guidanceScale.default,
        seed,
        topK: number('top-k', args['top-k']) ?? declaration.topK.default,
        temperature: args.greedy ? 0 : (number('temperature', args.temperature) ?? declaration.temperature.default),
      },
      {
        signal: new AbortController().signal,
        onStep: ({ index, count }) => process.stderr.write(`\rframe ${index}/${count}`),
      },
    );
    process.stderr.write('\n');
    const output = result.outputs[0]!;
    const wav = encodeWav(output.samples, {
      sampleRate: output.sampleRate,
      channels: output.channels,
      normalize: args.normalize ?? false,
      metadata: { prompt: args.prompt!, seed: output.seed, model: dir, software: SOFTWARE },
    });
    await fs.writeFile(args.out!, wav);
    const seconds = output.samples.length / output.channels / output.sampleRate;
    process.stdout.write(`${args.out} (${seconds.toFixed(2)} s, ${output.sampleRate} Hz, ${output.channels} channel${output.channels > 1 ? 's' : ''}, seed ${output.seed})\n`);
    if (args.raw) {
      const s = output.samples;
      await fs.writeFile(args.raw, new Uint8Array(s.buffer, s.byteOffset, s.byteLength));
      process.stdout.write(`${args.raw} (float32 [${s.length / output.channels}, ${output.channels}])\n`);
    }
    if (args.codes) {
      await fs.writeFile(args.codes, `${JSON.stringify(output.codes)}\n`);
      process.stdout.write(`${args.codes} (codes [${output.codes.length}][${output.codes[0]?.length ?? 0}])\n`);
    }
    process.stdout.write(
      `encode ${result.encodeMs.toFixed(0)} ms, generate ${result.generateMs.toFixed(0)} ms (${result.decoderSteps} steps), total ${(performance.now() - started).toFixed(0)} ms\n`,
    );
  } finally {
    await pipeline.release();
  }
}
