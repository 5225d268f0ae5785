/**
 * The shared MusicGen reference (../shared/fixtures: musicgen-tiny, a real MusicGen
 * architecture with random weights exported by Optimum, and musicgen-tiny-reference,
 * transformers' own token ids, codes, waveforms and logits), read for the tests that compare
 * with it. Where the folders are absent those tests are skipped, saying so in their titles.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SHARED_FIXTURES } from './sd-fixtures.js';

export const MUSICGEN_MODEL = path.join(SHARED_FIXTURES, 'musicgen-tiny');
export const MUSICGEN_REFERENCE = path.join(SHARED_FIXTURES, 'musicgen-tiny-reference');
export const hasMusicgenReference = fs.existsSync(path.join(MUSICGEN_REFERENCE, 'reference.json')) && fs.existsSync(path.join(MUSICGEN_MODEL, 'config.json'));
/** A describe title that says why it is skipped where the fixtures are absent. */
export const referenceTitle = (title: string) => (hasMusicgenReference ? title : `${title} (skipped: ${MUSICGEN_REFERENCE} is absent)`);

export interface GreedyCase {
  name: string;
  prompt: string;
  input_ids: number[];
  guidance_scale: number;
  max_new_tokens: number;
  frames: number;
  num_samples: number;
  codes: number[][];
  delayed_sequence: number[][];
  audio_f32: string;
  min_top1_top2_margin: number;
}

export interface MusicgenReference {
  model: { num_codebooks: number; decoder_vocab_size: number; pad_token_id: number; sampling_rate: number; frame_rate: number };
  tokenizer: { prompts: { text: string; input_ids: number[] }[] };
  greedy: GreedyCase[];
}

export const readMusicgenReference = () => JSON.parse(fs.readFileSync(path.join(MUSICGEN_REFERENCE, 'reference.json'), 'utf8')) as MusicgenReference;

export function referenceFloats(name: string): Float32Array {
  const bytes = fs.readFileSync(path.join(MUSICGEN_REFERENCE, name));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Signal-to-noise ratio of `actual` against `expected`, in dB (Infinity when identical). */
export function snrDb(expected: ArrayLike<number>, actual: ArrayLike<number>): number {
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < expected.length; i++) {
    signal += expected[i]! ** 2;
    noise += (expected[i]! - actual[i]!) ** 2;
  }
  return noise === 0 ? Infinity : 10 * Math.log10(signal / noise);
}
