import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeWav, parseWav, toInt16 } from '../../src/media/wav.js';
import { hasMusicgenReference, MUSICGEN_REFERENCE, referenceFloats, referenceTitle } from '../support/musicgen-reference.js';

const text = (bytes: Uint8Array, at: number, length = 4) => Buffer.from(bytes.subarray(at, at + length)).toString('latin1');
const u32 = (bytes: Uint8Array, at: number) => new DataView(bytes.buffer, bytes.byteOffset).getUint32(at, true);
const u16 = (bytes: Uint8Array, at: number) => new DataView(bytes.buffer, bytes.byteOffset).getUint16(at, true);

describe('WAV output', () => {
  const stereo = Float32Array.of(0, 0.5, -0.5, 1, -1, 0.25);

  it('writes a RIFF/WAVE 16-bit PCM header with the rate, channels, byte rate and block align', () => {
    const wav = encodeWav(stereo, { sampleRate: 32000, channels: 2 });
    expect([text(wav, 0), u32(wav, 4), text(wav, 8), text(wav, 12), u32(wav, 16)]).toEqual(['RIFF', wav.length - 8, 'WAVE', 'fmt ', 16]);
    expect([u16(wav, 20), u16(wav, 22), u32(wav, 24), u32(wav, 28), u16(wav, 32), u16(wav, 34)]).toEqual([1, 2, 32000, 128000, 4, 16]);
    expect([text(wav, 36), u32(wav, 40), wav.length]).toEqual(['data', 12, 44 + 12]);
  });

  it('keeps channels interleaved and rounds clip(round(x · 32767)) with halves to even', () => {
    expect(Array.from(parseWav(encodeWav(stereo, { sampleRate: 8000, channels: 2 })).pcm)).toEqual([0, 16384, -16384, 32767, -32767, 8192]);
    expect([2.5, 3.5, -2.5, -3.5].map((v) => toInt16(v / 32767))).toEqual([2, 4, -2, -4]);
    expect([1.5, -2, Number.NaN].map(toInt16)).toEqual([32767, -32768, 0]);
  });

  it('puts prompt, seed, model and software in a LIST/INFO chunk before the data, and reads them back', () => {
    const metadata = { prompt: 'lofi — hip hop', seed: 42, model: 'musicgen-small', software: 'Kiln' };
    const wav = encodeWav(stereo, { sampleRate: 32000, channels: 2, metadata });
    expect([text(wav, 36), text(wav, 44)]).toEqual(['LIST', 'INFO']);
    const chunk = Buffer.from(wav.subarray(48, 44 + u32(wav, 40))).toString('utf8');
    expect(chunk).toContain('INAM');
    expect(chunk).toContain('lofi — hip hop\0');
    expect(chunk).toContain('ICMT');
    expect(chunk).toContain('seed 42\0');
    expect(chunk).toContain('ISRC');
    expect(chunk).toContain('musicgen-small\0');
    expect(chunk).toContain('ISFT');
    expect(u32(wav, 40) % 2).toBe(0);
    const parsed = parseWav(wav);
    expect(parsed.metadata).toEqual(metadata);
    expect([parsed.sampleRate, parsed.channels, parsed.bitsPerSample, parsed.pcm.length]).toEqual([32000, 2, 16, 6]);
  });

  it('gives the same bytes for the same input', () => {
    const options = { sampleRate: 16000, channels: 1, metadata: { prompt: 'same', seed: 1 } };
    const samples = Float32Array.from({ length: 999 }, (_, i) => Math.sin(i / 7));
    expect(Buffer.from(encodeWav(samples, options)).equals(Buffer.from(encodeWav(samples, options)))).toBe(true);
  });

  it('scales the peak to full scale only when asked', () => {
    const quiet = Float32Array.of(0.1, -0.25, 0.05);
    expect(Array.from(parseWav(encodeWav(quiet, { sampleRate: 8000, channels: 1 })).pcm)).toEqual([3277, -8192, 1638]);
    expect(Array.from(parseWav(encodeWav(quiet, { sampleRate: 8000, channels: 1, normalize: true })).pcm)).toEqual([13107, -32767, 6553]);
    expect(Array.from(parseWav(encodeWav(new Float32Array(3), { sampleRate: 8000, channels: 1, normalize: true })).pcm)).toEqual([0, 0, 0]);
  });

  it('refuses what 16-bit mono or stereo WAV cannot say', () => {
    expect(() => encodeWav(new Float32Array(3), { sampleRate: 8000, channels: 2 })).toThrow('do not split');
    expect(() => encodeWav(new Float32Array(3), { sampleRate: 8000, channels: 3 })).toThrow('mono or stereo');
    expect(() => parseWav(new TextEncoder().encode('RIFF....WAVEjunk'))).toThrow('fmt and data');
  });

  it.skipIf(!hasMusicgenReference)(referenceTitle("writes transformers' reference waveforms to the reference WAV files' exact bytes"), () => {
    for (const name of ['case0', 'case1', 'case2', 'sampled']) {
      const wav = encodeWav(referenceFloats(`${name}.audio.f32`), { sampleRate: 32000, channels: 1 });
      expect(Buffer.from(wav).equals(fs.readFileSync(path.join(MUSICGEN_REFERENCE, `${name}.wav`))), name).toBe(true);
    }
  });
});
