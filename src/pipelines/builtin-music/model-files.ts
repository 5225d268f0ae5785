import fs from 'node:fs/promises';
import path from 'node:path';
import { BUILTIN } from '../builtin/model-files.js';
import { DataType, GraphBuilder } from '../onnx/graph-builder.js';
import { SeededRandom } from '../random.js';

/**
 * Kiln's built-in music model: three small ONNX graphs generated from fixed seeds, so every
 * install has the same bytes without downloading anything. The pipeline (pipeline.ts) runs
 * them the way MusicGen runs its parts: encode the prompt once, then one step per audio frame.
 *
 * - `text_encoder.onnx`: hashed word ids (the built-in image model's tokenizer) → the mean of
 *   their embeddings → a prompt vector.
 * - `melody.onnx`: the note decoder. From the condition (prompt vector ‖ a style vector drawn
 *   from the seed), the previous note (one-hot over two octaves of a scale) and the note's place
 *   in the bar, logits over the next note, with fixed terms that favour small steps and chord
 *   tones on strong beats. The pipeline samples from them with the same top-k / temperature
 *   sampler MusicGen uses, at each note start.
 * - `synth.onnx`: the synthesiser, run once per frame. Two voices (melody and bass) of
 *   HARMONICS partials each, whose amplitudes and decay come from the condition through learned-
 *   looking weights, with attack/decay envelopes; a kick (a falling sine) on the beats and hats
 *   (enveloped noise) between them; a soft clip. Oscillator phases are its recurrent state:
 *   each run returns them for the next frame, so frames join without clicks.
 */
export const BUILTIN_MUSIC = {
  version: 1,
  sampleRate: 32000,
  frameRate: 50,
  /** Samples per frame. */
  hop: 640,
  embed: 32,
  style: 16,
  hidden: 32,
  /** Notes the melody chooses among: two octaves and one note of a seven-note scale. */
  degrees: 15,
  /** Eighth notes per bar. */
  barPositions: 8,
  harmonics: 6,
  voices: 2,
} as const;

export const BUILTIN_MUSIC_FILES = {
  index: 'model_index.json',
  textEncoder: 'text_encoder.onnx',
  melody: 'melody.onnx',
  synth: 'synth.onnx',
} as const;

export const BUILTIN_MUSIC_PIPELINE = 'builtin-music';
export const BUILTIN_MUSIC_CLASS = 'KilnBuiltinMusicPipeline';

/** What a request gets where it leaves a setting out. */
export const BUILTIN_MUSIC_DEFAULTS = { durationSeconds: 8, guidanceScale: 3, topK: 250, temperature: 1 } as const;
/** Longest audio the built-in model makes in one request. */
export const BUILTIN_MUSIC_MAX_SECONDS = 60;

const COND = BUILTIN_MUSIC.embed + BUILTIN_MUSIC.style;
const PARTIALS = BUILTIN_MUSIC.voices * BUILTIN_MUSIC.harmonics;

export function buildBuiltinMusicModel(): { path: string; bytes: Uint8Array }[] {
  const index = {
    _class_name: BUILTIN_MUSIC_CLASS,
    _kiln_version: BUILTIN_MUSIC.version,
    pipeline: BUILTIN_MUSIC_PIPELINE,
    sampling_rate: BUILTIN_MUSIC.sampleRate,
    frame_rate: BUILTIN_MUSIC.frameRate,
    text_encoder: BUILTIN_MUSIC_FILES.textEncoder,
    melody: BUILTIN_MUSIC_FILES.melody,
    synth: BUILTIN_MUSIC_FILES.synth,
  };
  return [
    { path: BUILTIN_MUSIC_FILES.index, bytes: new TextEncoder().encode(`${JSON.stringify(index, null, 2)}\n`) },
    { path: BUILTIN_MUSIC_FILES.textEncoder, bytes: buildTextEncoder() },
    { path: BUILTIN_MUSIC_FILES.melody, bytes: buildMelody() },
    { path: BUILTIN_MUSIC_FILES.synth, bytes: buildSynth() },
  ];
}

/** Writes the built-in music model's folder into `dir` (created if need be) and returns `dir`. */
export async function writeBuiltinMusicModel(dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  for (const f of buildBuiltinMusicModel()) await fs.writeFile(path.join(dir, f.path), f.bytes);
  return dir;
}

/** The built-in music files `dir` lacks (none for a complete folder). */
export async function missingBuiltinMusicFiles(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (const f of Object.values(BUILTIN_MUSIC_FILES)) if (!(await fs.stat(path.join(dir, f)).catch(() => null))?.isFile()) missing.push(f);
  return missing;
}

const normals = (rng: SeededRandom, dims: number[], scale: number) => rng.normals(dims.reduce((a, b) => a * b, 1), scale);

function buildTextEncoder(): Uint8Array {
  const { embed } = BUILTIN_MUSIC;
  const { vocab, tokens } = BUILTIN;
  const rng = new SeededRandom(0x6d757363, 1);
  const g = new GraphBuilder('kiln-builtin-music-text-encoder');
  const ids = g.input('token_ids', DataType.INT64, ['batch', tokens]);
  const table = g.weight('text.embedding', [vocab, embed], rng.normals(vocab * embed));
  const embedded = g.op('Gather', [table, ids], { axis: 0 }); // [b, t, e]
  const present = g.op('Cast', [g.op('Greater', [ids, g.int64s('zero_id', [0])])], { to: DataType.FLOAT }); // [b, t]
  const axis1 = g.int64s('axis_1', [1]);
  const sum = g.op('ReduceSum', [g.op('Mul', [embedded, g.op('Unsqueeze', [present, g.int64s('axis_2', [2])])]), axis1], { keepdims: 0 });
  const count = g.op('Max', [g.op('ReduceSum', [present, axis1], { keepdims: 1 }), g.scalar('one', 1)]);
  const proj = g.weight('text_proj.weight', [embed, embed], normals(rng, [embed, embed], 1.5 / Math.sqrt(embed)));
  const bias = g.weight('text_proj.bias', [embed], normals(rng, [embed], 0.1));
  g.op('Tanh', [g.op('Add', [g.op('MatMul', [g.op('Div', [sum, count]), proj]), bias])], {}, 'prompt_embedding');
  g.output('prompt_embedding', DataType.FLOAT, ['batch', embed]);
  return g.toBytes();
}

function buildMelody(): Uint8Array {
  const { degrees: D, barPositions: P, hidden: H } = BUILTIN_MUSIC;
  const rng = new SeededRandom(0x6d757363, 2);
  const g = new GraphBuilder('kiln-builtin-music-melody');
  const cond = g.input('cond', DataType.FLOAT, ['batch', COND]);
  const previous = g.input('previous', DataType.FLOAT, ['batch', D]); // one-hot
  const position = g.input('position', DataType.FLOAT, ['batch', P]); // one-hot eighth of the bar
  const x = g.op('Concat', [cond, previous, position], { axis: 1 });
  const fanIn = COND + D + P;
  const h = g.op('Tanh', [g.op('Add', [g.op('MatMul', [x, g.weight('melody.layer1.weight', [fanIn, H], normals(rng, [fanIn, H], 1.4 / Math.sqrt(fanIn)))]), g.weight('melody.layer1.bias', [H], normals(rng, [H], 0.1))])]);
  const learned = g.op('Add', [g.op('MatMul', [h, g.weight('melody.out.weight', [H, D], normals(rng, [H, D], 0.7 / Math.sqrt(H)))]), g.weight('melody.out.bias', [D], normals(rng, [D], 0.1))]);
  // Melodies mostly move by step, and land on the chord's notes (degrees 0, 2, 4 of the scale) on the beats.
  const steps = new Float32Array(D * D);
  for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) steps[i * D + j] = i === j ? -0.8 : -0.55 * Math.abs(i - j);
  const chord = new Float32Array(P * D);
  for (let p = 0; p < P; p++) for (let d = 0; d < D; d++) chord[p * D + d] = [0, 2, 4].includes(d % 7) ? (p % 4 === 0 ? 1.5 : p % 2 === 0 ? 0.6 : 0) : 0;
  const bias = g.op('Add', [g.op('MatMul', [previous, g.weight('melody.steps', [D, D], steps)]), g.op('MatMul', [position, g.weight('melody.chord', [P, D], chord)])]);
  g.op('Add', [learned, bias], {}, 'logits');
  g.output('logits', DataType.FLOAT, ['batch', D]);
  return g.toBytes();
}

function buildSynth(): Uint8Array {
  const { harmonics: Hm, voices, sampleRate } = BUILTIN_MUSIC;
  const rng = new SeededRandom(0x6d757363, 3);
  const g = new GraphBuilder('kiln-builtin-music-synth');
  const cond = g.input('cond', DataType.FLOAT, ['batch', COND]);
  const pitch = g.input('pitch', DataType.FLOAT, ['batch', voices]); // Hz of the melody and bass notes
  const age = g.input('age', DataType.FLOAT, ['batch', voices]); // seconds since each note began, at the frame's start
  const beatAge = g.input('beat_age', DataType.FLOAT, ['batch', 2]); // seconds since the last kick and the last hat
  const phase = g.input('phase', DataType.FLOAT, ['batch', PARTIALS]);
  const noise = g.input('noise', DataType.FLOAT, ['batch', 'samples']);
  const offsets = g.input('offsets', DataType.FLOAT, [1, 'samples']); // n / sample rate

  const dense = (name: string, out: number, scale: number) =>
    g.op('Add', [g.op('MatMul', [cond, g.weight(`${name}.weight`, [COND, out], normals(rng, [COND, out], scale / Math.sqrt(COND)))]), g.weight(`${name}.bias`, [out], normals(rng, [out], 0.2))]);
  // Partial p belongs to voice floor(p / Hm) and is its harmonic (p mod Hm) + 1.
  const voiceOf = new Float32Array(voices * PARTIALS);
  const harmonicOf = new Float32Array(voices * PARTIALS);
  const rolloff = new Float32Array(PARTIALS);
  for (let p = 0; p < PARTIALS; p++) {
    const v = Math.floor(p / Hm);
    voiceOf[v * PARTIALS + p] = 1;
    harmonicOf[v * PARTIALS + p] = (p % Hm) + 1;
    rolloff[p] = 1 / ((p % Hm) + 1);
  }
  const spread = (x: string, matrix: string) => g.op('MatMul', [x, matrix]); // [b, voices] → [b, partials]
  const voiceMap = g.weight('voice_of_partial', [voices, PARTIALS], voiceOf);
  const levels = g.op('Sigmoid', [dense('levels', voices + 2, 1.5)]); // melody, bass, kick, hat
  const [voiceLevels, drumLevels] = [
    g.op('Slice', [levels, g.int64s('voices_start', [0]), g.int64s('voices_end', [voices]), g.int64s('axis_last', [1])]),
    g.op('Slice', [levels, g.int64s('drums_start', [voices]), g.int64s('drums_end', [voices + 2]), g.int64s('axis_last_2', [1])]),
  ];
  const timbre = g.op('Mul', [g.op('Sigmoid', [dense('timbre', PARTIALS, 2)]), g.weight('rolloff', [PARTIALS], rolloff)]);
  const amplitude = g.op('Mul', [timbre, spread(voiceLevels, voiceMap)]); // [b, partials]
  const decay = spread(g.op('Add', [g.scalar('decay_base', 0.8), g.op('Mul', [g.scalar('decay_span', 3.5), g.op('Sigmoid', [dense('decay', voices, 1.5)])])]), voiceMap);
  const frequency = g.op('MatMul', [pitch, g.weight('harmonic_of_partial', [voices, PARTIALS], harmonicOf)]); // [b, partials] Hz

  const axis2 = g.int64s('axis_2', [2]);
  const column = (x: string) => g.op('Unsqueeze', [x, axis2]); // [b, partials] → [b, partials, 1]
  const t = g.op('Add', [column(spread(age, voiceMap)), offsets]); // [b, partials, n]
  const twoPi = g.scalar('two_pi', 2 * Math.PI);
  const angle = g.op('Add', [column(phase), g.op('Mul', [column(g.op('Mul', [frequency, twoPi])), offsets])]);
  const attack = g.op('Sub', [g.scalar('one', 1), g.op('Exp', [g.op('Mul', [t, g.scalar('attack_rate', -120)])])]);
  const envelope = g.op('Mul', [attack, g.op('Exp', [g.op('Neg', [g.op('Mul', [column(decay), t])])])]);
  const partials = g.op('Mul', [g.op('Mul', [g.op('Sin', [angle]), envelope]), column(amplitude)]);
  const tonal = g.op('ReduceSum', [partials, g.int64s('axis_1', [1])], { keepdims: 0 }); // [b, n]

  const drumLevel = (i: number) => g.op('Gather', [drumLevels, g.int64s(`drum_${i}`, [i])], { axis: 1 }); // [b, 1]
  const drumAge = (i: number) => g.op('Add', [g.op('Gather', [beatAge, g.int64s(`beat_${i}`, [i])], { axis: 1 }), offsets]); // [b, n]
  const kickT = drumAge(0);
  // A sine falling from 165 Hz towards 55 Hz: its phase is the integral of that frequency.
  const kickPhase = g.op('Mul', [twoPi, g.op('Add', [g.op('Mul', [g.scalar('kick_floor', 55), kickT]), g.op('Mul', [g.scalar('kick_sweep', 110 / 18), g.op('Sub', [g.scalar('one_k', 1), g.op('Exp', [g.op('Mul', [kickT, g.scalar('kick_rate', -18)])])])])])]);
  const kick = g.op('Mul', [g.op('Mul', [g.op('Sin', [kickPhase]), g.op('Exp', [g.op('Mul', [kickT, g.scalar('kick_decay', -9)])])]), g.op('Mul', [drumLevel(0), g.scalar('kick_gain', 0.6)])]);
  const hat = g.op('Mul', [g.op('Mul', [noise, g.op('Exp', [g.op('Mul', [drumAge(1), g.scalar('hat_decay', -70)])])]), g.op('Mul', [drumLevel(1), g.scalar('hat_gain', 0.35)])]);
  const mix = g.op('Add', [g.op('Add', [g.op('Mul', [tonal, g.scalar('tonal_gain', 0.8)]), kick]), hat]);
  g.op('Mul', [g.op('Tanh', [g.op('Mul', [mix, g.scalar('drive', 1.2)])]), g.scalar('ceiling', 0.8)], {}, 'audio');
  g.output('audio', DataType.FLOAT, ['batch', 'samples']);

  // Where each oscillator is after this frame, kept in [0, 2π) so that float32 sines stay exact over minutes.
  const advance = g.op('Mul', [g.op('Mul', [frequency, twoPi]), g.op('Div', [g.op('Cast', [g.op('Gather', [g.op('Shape', [offsets]), g.int64s('samples_axis', [1])])], { to: DataType.FLOAT }), g.scalar('rate', sampleRate)])]);
  g.op('Mod', [g.op('Add', [phase, advance]), twoPi], { fmod: 1 }, 'next_phase');
  g.output('next_phase', DataType.FLOAT, ['batch', PARTIALS]);
  return g.toBytes();
}
