import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { AudioGenerateHooks, AudioGenerateRequest, AudioGenerateResult, AudioLoadOptions, LoadedAudioPipeline } from '../audio-pipeline.js';
import { checkAudioRequest, refuseAudio } from '../audio-request.js';
import { builtinTokenIds } from '../builtin/prompt-tokens.js';
import { BUILTIN } from '../builtin/model-files.js';
import { createSessionOptions } from '../onnx/session-options.js';
import { seedFor } from '../pipeline.js';
import { SeededRandom } from '../random.js';
import { TokenSampler } from '../token-sampling.js';
import { type Arrangement, arrangementFor, bassNote, framesPerNote, hz, melodyNote } from './arrangement.js';
import { BUILTIN_MUSIC, BUILTIN_MUSIC_DEFAULTS, BUILTIN_MUSIC_FILES, BUILTIN_MUSIC_MAX_SECONDS } from './model-files.js';

const START_DEGREE = 7;
const STYLE_STREAM = 1;
const NOISE_STREAM = 2;
const HAT_NOISE = 0.3;
// A drum that has not been struck yet is this long silent.
const NEVER = 60;

/**
 * The built-in music model (model-files.ts) run one frame per step, the way MusicGen runs one
 * decoder step per token: the prompt and the empty prompt are encoded together and guidance
 * pushes the prompt's vector from the empty one's (`empty + g·(prompt − empty)`, the formula of
 * classifier-free guidance); the guided vector sets tempo, scale and key (arrangement.ts) and,
 * with a style vector drawn from the seed, the synthesiser's timbre and mix. At each eighth
 * note the melody graph gives logits over the next note, sampled with the request's top-k and
 * temperature (0: greedy) from SeededRandom(seed + i, stream 0); the bass follows the melody's
 * chord every half bar; the synthesiser renders each frame. The codes are [melody, bass] MIDI
 * notes per frame.
 */
export async function loadBuiltinMusicPipeline(dir: string, options: AudioLoadOptions): Promise<LoadedAudioPipeline> {
  const sessionOptions = createSessionOptions(options);
  const files = [BUILTIN_MUSIC_FILES.textEncoder, BUILTIN_MUSIC_FILES.melody, BUILTIN_MUSIC_FILES.synth];
  const bytes = await Promise.all(files.map(async (f) => new Uint8Array(await fs.readFile(path.join(dir, f)))));
  const sessions: ort.InferenceSession[] = [];
  try {
    for (const b of bytes) sessions.push(await ort.InferenceSession.create(b, sessionOptions));
  } catch (err) {
    await Promise.all(sessions.map((s) => s.release()));
    throw err;
  }
  const [encoder, melody, synth] = sessions as [ort.InferenceSession, ort.InferenceSession, ort.InferenceSession];
  return {
    sizeBytes: bytes.reduce((n, b) => n + b.byteLength, 0) * 2,
    generate: (request, hooks) => generate(encoder, melody, synth, request, hooks),
    async release() {
      await Promise.all(sessions.map((s) => s.release()));
    },
  };
}

function framesFor(req: AudioGenerateRequest): number {
  const frames = req.maxNewTokens ?? Math.round((req.durationSeconds ?? BUILTIN_MUSIC_DEFAULTS.durationSeconds) * BUILTIN_MUSIC.frameRate);
  const most = BUILTIN_MUSIC_MAX_SECONDS * BUILTIN_MUSIC.frameRate;
  if (frames < 1 || frames > most) throw refuseAudio(`the built-in music model makes 1 to ${most} frames (${BUILTIN_MUSIC_MAX_SECONDS} s), not ${frames}`);
  return frames;
}

interface Voice {
  degree: number;
  melodyStart: number;
  bass: number;
  bassStart: number;
  phase: Float32Array;
}

async function generate(
  encoder: ort.InferenceSession,
  melody: ort.InferenceSession,
  synth: ort.InferenceSession,
  req: AudioGenerateRequest,
  hooks: AudioGenerateHooks,
): Promise<AudioGenerateResult> {
  const t0 = performance.now();
  const n = checkAudioRequest(req);
  const frames = framesFor(req);
  hooks.signal.throwIfAborted();
  const prompt = await encodePrompt(encoder, req.prompt, req.guidanceScale);
  const arrangement = arrangementFor(prompt);
  const { embed, style, hop, sampleRate, degrees, barPositions } = BUILTIN_MUSIC;
  const width = embed + style;
  const seeds = Array.from({ length: n }, (_, i) => seedFor(req.seed, i));
  const cond = new Float32Array(n * width);
  seeds.forEach((seed, b) => {
    cond.set(prompt, b * width);
    cond.set(new SeededRandom(seed, STYLE_STREAM).normals(style, 0.8), b * width + embed);
  });
  const t1 = performance.now();

  const condTensor = new ort.Tensor('float32', cond, [n, width]);
  const offsets = new ort.Tensor('float32', Float32Array.from({ length: hop }, (_, i) => i / sampleRate), [1, hop]);
  const sampling = seeds.map((seed) => new SeededRandom(seed, 0));
  const noise = seeds.map((seed) => new SeededRandom(seed, NOISE_STREAM));
  const sampler = new TokenSampler(degrees, { temperature: req.temperature, topK: req.topK });
  const voices: Voice[] = seeds.map(() => ({ degree: START_DEGREE, melodyStart: 0, bass: bassNote(arrangement, START_DEGREE), bassStart: 0, phase: new Float32Array(BUILTIN_MUSIC.voices * BUILTIN_MUSIC.harmonics) }));
  const audio = seeds.map(() => new Float32Array(frames * hop));
  const codes = seeds.map(() => [new Array<number>(frames), new Array<number>(frames)]);
  const perNote = framesPerNote(arrangement);
  const seconds = (framesAgo: number) => (framesAgo * hop) / sampleRate;

  for (let f = 0; f < frames; f++) {
    hooks.signal.throwIfAborted();
    const note = Math.floor(f / perNote);
    if (f % perNote === 0) await nextNotes(melody, condTensor, voices, note % barPositions, sampler, sampling, arrangement, f);
    const lastKick = note - (note % 2);
    const lastHat = note % 2 === 1 ? note : note - 1;
    const pitch = new Float32Array(2 * n);
    const age = new Float32Array(2 * n);
    const beatAge = new Float32Array(2 * n);
    const phase = new Float32Array(n * voices[0]!.phase.length);
    const noiseValues = new Float32Array(n * hop);
    voices.forEach((v, b) => {
      pitch.set([hz(melodyNote(arrangement, v.degree)), hz(v.bass)], 2 * b);
      age.set([seconds(f - v.melodyStart), seconds(f - v.bassStart)], 2 * b);
      beatAge.set([seconds(f - lastKick * perNote), lastHat < 0 ? NEVER : seconds(f - lastHat * perNote)], 2 * b);
      phase.set(v.phase, b * v.phase.length);
      noiseValues.set(noise[b]!.normals(hop, HAT_NOISE), b * hop);
      codes[b]![0]![f] = melodyNote(arrangement, v.degree);
      codes[b]![1]![f] = v.bass;
    });
    const out = await synth.run({
      cond: condTensor,
      pitch: new ort.Tensor('float32', pitch, [n, 2]),
      age: new ort.Tensor('float32', age, [n, 2]),
      beat_age: new ort.Tensor('float32', beatAge, [n, 2]),
      phase: new ort.Tensor('float32', phase, [n, voices[0]!.phase.length]),
      noise: new ort.Tensor('float32', noiseValues, [n, hop]),
      offsets,
    });
    const samples = out.audio!.data as Float32Array;
    const nextPhase = out.next_phase!.data as Float32Array;
    voices.forEach((v, b) => {
      audio[b]!.set(samples.subarray(b * hop, (b + 1) * hop), f * hop);
      v.phase = nextPhase.slice(b * v.phase.length, (b + 1) * v.phase.length);
    });
    hooks.onStep({ index: f + 1, count: frames });
  }
  const t2 = performance.now();
  return {
    outputs: seeds.map((seed, b) => ({ samples: audio[b]!, sampleRate, channels: 1, seed, codes: codes[b]! })),
    encodeMs: t1 - t0,
    generateMs: t2 - t1,
    decoderSteps: frames,
  };
}

/** The guided prompt vector: empty + g·(prompt − empty). */
async function encodePrompt(encoder: ort.InferenceSession, prompt: string, guidance: number): Promise<Float32Array> {
  const ids = new BigInt64Array(2 * BUILTIN.tokens);
  ids.set(builtinTokenIds(prompt), 0);
  ids.set(builtinTokenIds(''), BUILTIN.tokens);
  const out = await encoder.run({ token_ids: new ort.Tensor('int64', ids, [2, BUILTIN.tokens]) });
  const both = out.prompt_embedding!.data as Float32Array;
  const { embed } = BUILTIN_MUSIC;
  return Float32Array.from({ length: embed }, (_, i) => both[embed + i]! + guidance * (both[i]! - both[embed + i]!));
}

/** Samples every output's next melody note, and moves the bass to the new note's chord on each half bar. */
async function nextNotes(
  melody: ort.InferenceSession,
  cond: ort.Tensor,
  voices: Voice[],
  position: number,
  sampler: TokenSampler,
  randoms: SeededRandom[],
  arrangement: Arrangement,
  frame: number,
) {
  const { degrees, barPositions } = BUILTIN_MUSIC;
  const n = voices.length;
  const previous = new Float32Array(n * degrees);
  const place = new Float32Array(n * barPositions);
  voices.forEach((v, b) => {
    previous[b * degrees + v.degree] = 1;
    place[b * barPositions + position] = 1;
  });
  const out = await melody.run({ cond, previous: new ort.Tensor('float32', previous, [n, degrees]), position: new ort.Tensor('float32', place, [n, barPositions]) });
  const logits = out.logits!.data as Float32Array;
  voices.forEach((v, b) => {
    v.degree = sampler.next(logits, b * degrees, randoms[b]!);
    v.melodyStart = frame;
    if (position % 4 === 0) {
      v.bass = bassNote(arrangement, v.degree);
      v.bassStart = frame;
    }
  });
}
