/**
 * The audio pipelines' own costs, without the service:
 * `npm run bench:musicgen -- [MODEL_DIR ...] [--tokens 200] [--rounds 5] [--generations 50] [--provider cpu]`.
 *
 * For the shared musicgen-tiny fixture (when ../shared/fixtures is there) and each MusicGen
 * folder given, it prints decoder steps per second through Kiln's pipeline (steps 2…n of a
 * sampled generation under guidance 3, timed between its step reports, so text encoding and
 * EnCodec are left out) beside a bare `session.run` loop over the same decoder session with the
 * same cache handling (first step without cache, self-attention cache fed back, the first
 * step's cross-attention cache kept) and only an argmax between steps; their ratio is Kiln's
 * per-step overhead. Rounds alternate between the two; medians are reported. Then seconds of
 * audio per second of wall time for a whole 8 s generation (encode, decode and EnCodec
 * included), and the process's RSS over `--generations` 2 s generations, every fifth cancelled
 * half-way (memory must stay flat: the KV cache is released either way). The built-in music
 * model gets the same audio-per-second and RSS figures.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import type { AudioGenerateRequest, LoadedAudioPipeline } from '../src/pipelines/audio-pipeline.js';
import { writeBuiltinMusicModel } from '../src/pipelines/builtin-music/model-files.js';
import { loadBuiltinMusicPipeline } from '../src/pipelines/builtin-music/pipeline.js';
import { loadMusicgenPipeline, type MusicgenPipeline } from '../src/pipelines/musicgen/pipeline.js';
import { tensorFor } from '../src/pipelines/onnx/tensor-io.js';
import { argmax } from '../src/pipelines/token-sampling.js';
import { parseCommandLine } from '../src/cli/command-line.js';

const USAGE = `usage: npm run bench:musicgen -- [MODEL_DIR ...] [--tokens 200] [--rounds 5] [--generations 50] [--provider cpu]
  MODEL_DIR       MusicGen ONNX folders, after ../shared/fixtures/musicgen-tiny where it is present
  --tokens N      decoder steps of the timed generations (default 200)
  --rounds N      timed rounds, alternating Kiln and a bare session.run loop (default 5)
  --generations N 2 s generations for the memory figure (default 50)
  --provider LIST execution providers (default cpu)
  --help          this text`;
const { values: args, positionals } = parseCommandLine(
  USAGE,
  {
    tokens: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '5' },
    generations: { type: 'string', default: '50' },
    provider: { type: 'string', default: 'cpu' },
  },
  { allowPositionals: true },
);
const MUSICGEN_TINY = fileURLToPath(new URL('../../shared/fixtures/musicgen-tiny', import.meta.url));
const models = [...(await fs.stat(MUSICGEN_TINY).then(() => [MUSICGEN_TINY], () => [])), ...positionals.map((p) => path.resolve(p))];
const tokens = Number(args.tokens);
const rounds = Number(args.rounds);
const generations = Number(args.generations);
const options = { executionProviders: args.provider.split(',') };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const never = () => new AbortController().signal;
const request = (extra: Partial<AudioGenerateRequest> = {}): AudioGenerateRequest => ({ prompt: '80s pop track with bassy drums and synth', guidanceScale: 3, seed: 1, topK: 250, temperature: 1, ...extra });

/** Decoder steps per second through Kiln: steps 2…n, timed between step reports. */
async function kilnStepsPerSecond(pipeline: MusicgenPipeline): Promise<number> {
  const times: number[] = [];
  await pipeline.generate(request({ maxNewTokens: tokens }), { signal: never(), onStep: () => times.push(performance.now()) });
  return (times.length - 1) / ((times.at(-1)! - times[0]!) / 1000);
}

/** The same decoder steps as a bare session.run loop: the pipeline's session, feeds and cache handling, argmax between steps. */
async function bareStepsPerSecond(pipeline: MusicgenPipeline): Promise<number> {
  const { sessions, folder } = pipeline;
  const ids = pipeline.tokenizer.encode(request().prompt);
  const te = sessions.textEncoder;
  const encoded = await te.session.run({
    [te.inputIds.name]: tensorFor(te.inputIds, ids, [1, ids.length]),
    ...(te.attentionMask ? { [te.attentionMask.name]: tensorFor(te.attentionMask, ids.map(() => 1), [1, ids.length]) } : {}),
  });
  const states = encoded[te.hiddenStates]!.data as Float32Array;
  const total = 2;
  const doubled = new Float32Array(states.length * 2);
  doubled.set(states);
  const graph = sessions.first;
  const hidden = new ort.Tensor('float32', doubled, [total, ids.length, states.length / ids.length]);
  const mask = tensorFor(graph.encoderAttentionMask!, [...ids.map(() => 1), ...ids.map(() => 0)], [total, ids.length]);
  const K = folder.codebooks;
  const rows = total * K;
  const input = new BigInt64Array(rows).fill(BigInt(folder.decoderStartTokenId));
  const empty = new ort.Tensor('float32', new Float32Array(0), [total, sessions.cache.heads, 0, sessions.cache.headDim]);
  const cache = new Map<string, ort.Tensor>();
  let started = 0;
  for (let step = 0; step < tokens; step++) {
    if (step === 1) started = performance.now();
    const g = step === 0 ? sessions.first : sessions.withPast;
    const feeds: Record<string, ort.Tensor> = { [g.inputIds.name]: new ort.Tensor('int64', input, [rows, 1]), [g.encoderHiddenStates.name]: hidden };
    if (g.encoderAttentionMask) feeds[g.encoderAttentionMask.name] = mask;
    if (g.useCacheBranch) feeds[g.useCacheBranch.name] = new ort.Tensor('bool', Uint8Array.of(step === 0 ? 0 : 1), [1]);
    for (const p of g.past) feeds[p.name] = step === 0 ? empty : cache.get(p.present)!;
    const out = await g.session.run(feeds);
    for (const [name, value] of Object.entries(out)) if (name.startsWith('present.') && (step === 0 || name.includes('.decoder.'))) cache.set(name, value);
    const logits = out[g.logits]!.data as Float32Array;
    for (let r = 0; r < K; r++) input[r] = input[K + r] = BigInt(argmax(logits, r * folder.vocabSize, folder.vocabSize));
  }
  return (tokens - 1) / ((performance.now() - started) / 1000);
}

/** Seconds of audio made per second of wall time, for one whole generation. */
async function audioPerSecond(pipeline: LoadedAudioPipeline, seconds: number): Promise<number> {
  const started = performance.now();
  const result = await pipeline.generate(request({ durationSeconds: seconds }), { signal: never(), onStep: () => {} });
  const made = result.outputs[0]!.samples.length / result.outputs[0]!.channels / result.outputs[0]!.sampleRate;
  return made / ((performance.now() - started) / 1000);
}

/** RSS after a warm-up and across `generations` 2 s generations, every fifth cancelled half-way. */
async function rssOver(pipeline: LoadedAudioPipeline): Promise<string> {
  const run = async (i: number) => {
    const controller = new AbortController();
    await pipeline
      .generate(request({ durationSeconds: 2, seed: i }), {
        signal: controller.signal,
        onStep: ({ index, count }) => {
          if (i % 5 === 4 && index === Math.floor(count / 2)) controller.abort(new Error('cancelled'));
        },
      })
      .catch((err: Error) => {
        if (err.message !== 'cancelled') throw err;
      });
  };
  for (let i = 0; i < 5; i++) await run(i);
  globalThis.gc?.();
  const samples = [process.memoryUsage.rss()];
  for (let i = 1; i <= generations; i++) {
    await run(i);
    if (i % 10 === 0) samples.push(process.memoryUsage.rss());
  }
  return `RSS over ${generations} generations (after 5 warm-up ones, every 10th): ${samples.map(mib).join(' → ')} (change ${mib(samples.at(-1)! - samples[0]!)})`;
}

for (const dir of models) {
  const pipeline = await loadMusicgenPipeline(dir, options);
  try {
    console.log(`${dir}: ${pipeline.folder.codebooks} codebooks, ${pipeline.folder.channels} channel(s), ${pipeline.folder.sampleRate} Hz; ${tokens} decoder steps, guidance 3, top-k 250 sampling`);
    await kilnStepsPerSecond(pipeline);
    await bareStepsPerSecond(pipeline);
    const kiln: number[] = [];
    const bare: number[] = [];
    for (let r = 0; r < rounds; r++) {
      kiln.push(await kilnStepsPerSecond(pipeline));
      bare.push(await bareStepsPerSecond(pipeline));
    }
    const [k, b] = [median(kiln), median(bare)];
    console.log(`  decoder steps/s: Kiln ${k.toFixed(1)}, bare session.run loop ${b.toFixed(1)} (median of ${rounds}); Kiln / bare = ${(k / b).toFixed(3)}`);
    console.log(`  audio: ${(await audioPerSecond(pipeline, 8)).toFixed(2)} s of audio per s of wall time (an 8 s generation, everything included)`);
    console.log(`  ${await rssOver(pipeline)}`);
  } finally {
    await pipeline.release();
  }
}

const builtinDir = await writeBuiltinMusicModel(await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-bench-builtin-music-')));
const builtin = await loadBuiltinMusicPipeline(builtinDir, options);
try {
  await audioPerSecond(builtin, 1);
  const speeds: number[] = [];
  for (let r = 0; r < rounds; r++) speeds.push(await audioPerSecond(builtin, 8));
  console.log(`built-in music model: ${median(speeds).toFixed(1)} s of audio per s of wall time (8 s generations, median of ${rounds})`);
  console.log(`  ${await rssOver(builtin)}`);
} finally {
  await builtin.release();
  await fs.rm(builtinDir, { recursive: true, force: true });
}
