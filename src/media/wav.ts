/**
 * WAV files of generated audio, written by hand (RIFF is a few fixed fields): 16-bit PCM at the
 * model's rate, channels interleaved, and a LIST/INFO chunk naming what made it, placed
 * between `fmt ` and `data`. Samples become int16 as `clip(round(x · 32767))`, rounding halves
 * to even (numpy's rule, so Kiln's files match reference files made with it), after scaling the
 * peak to full scale only when asked. Nothing time- or machine-dependent goes in: the same
 * samples and metadata always give the same bytes.
 */

export interface WavMetadata {
  /** INAM (title). */
  prompt?: string;
  /** ICMT (comment), as `seed N`. */
  seed?: number;
  /** ISRC (source): the model that made it. */
  model?: string;
  /** ISFT (software). */
  software?: string;
}

export interface WavOptions {
  sampleRate: number;
  channels: number;
  metadata?: WavMetadata;
  /** Scale so that the largest magnitude is full scale. */
  normalize?: boolean;
}

const INFO_IDS: [keyof WavMetadata, string][] = [
  ['prompt', 'INAM'],
  ['seed', 'ICMT'],
  ['model', 'ISRC'],
  ['software', 'ISFT'],
];
const SEED_COMMENT = /^seed (\d+)$/;
const BITS = 16;
const FULL_SCALE = 32767;

/** Encodes interleaved float samples in [-1, 1] (beyond is clipped) as a WAV file. */
export function encodeWav(samples: Float32Array, options: WavOptions): Uint8Array {
  const { sampleRate, channels } = options;
  if (!Number.isInteger(channels) || channels < 1 || channels > 2) throw new Error(`a WAV of ${channels} channels: Kiln writes mono or stereo`);
  if (!Number.isInteger(sampleRate) || sampleRate < 1) throw new Error(`sample rate ${sampleRate} is not a positive whole number`);
  if (samples.length % channels !== 0) throw new Error(`${samples.length} samples do not split into ${channels} channels`);
  const info = infoChunk(options.metadata ?? {});
  const dataBytes = samples.length * 2;
  const bytes = new Uint8Array(12 + 24 + info.length + 8 + dataBytes);
  const view = new DataView(bytes.buffer);
  const ascii = (offset: number, text: string) => {
    for (let i = 0; i < text.length; i++) bytes[offset + i] = text.charCodeAt(i);
  };
  ascii(0, 'RIFF');
  view.setUint32(4, bytes.length - 8, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, channels, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * channels * (BITS / 8), true);
  view.setUint16(32, channels * (BITS / 8), true);
  view.setUint16(34, BITS, true);
  bytes.set(info, 36);
  const data = 36 + info.length;
  ascii(data, 'data');
  view.setUint32(data + 4, dataBytes, true);
  const gain = options.normalize ? normalizingGain(samples) : 1;
  for (let i = 0; i < samples.length; i++) view.setInt16(data + 8 + 2 * i, toInt16(samples[i]! * gain), true);
  return bytes;
}

/** A float sample as 16-bit PCM: clip(round(x · 32767)) computed in double precision, halves to even; NaN is silence. */
export function toInt16(x: number): number {
  if (Number.isNaN(x)) return 0;
  const scaled = x * FULL_SCALE;
  let r = Math.round(scaled);
  if (r - scaled === 0.5 && r % 2 !== 0) r -= 1;
  return Math.max(-FULL_SCALE - 1, Math.min(FULL_SCALE, r));
}

function normalizingGain(samples: Float32Array): number {
  let peak = 0;
  for (const x of samples) if (Math.abs(x) > peak) peak = Math.abs(x);
  return peak > 0 && Number.isFinite(peak) ? 1 / peak : 1;
}

/** LIST/INFO with one NUL-terminated UTF-8 string per field given, each padded to an even length; empty when none is given. */
function infoChunk(metadata: WavMetadata): Uint8Array {
  const fields: Uint8Array[] = [];
  for (const [key, id] of INFO_IDS) {
    const value = metadata[key];
    if (value === undefined) continue;
    const text = new TextEncoder().encode(key === 'seed' ? `seed ${value}` : String(value));
    const size = text.length + 1;
    const field = new Uint8Array(8 + size + (size % 2));
    for (let i = 0; i < 4; i++) field[i] = id.charCodeAt(i);
    new DataView(field.buffer).setUint32(4, size, true);
    field.set(text, 8);
    fields.push(field);
  }
  if (!fields.length) return new Uint8Array(0);
  const body = fields.reduce((n, f) => n + f.length, 4);
  const chunk = new Uint8Array(8 + body);
  chunk.set([0x4c, 0x49, 0x53, 0x54], 0); // LIST
  new DataView(chunk.buffer).setUint32(4, body, true);
  chunk.set([0x49, 0x4e, 0x46, 0x4f], 8); // INFO
  let offset = 12;
  for (const f of fields) {
    chunk.set(f, offset);
    offset += f.length;
  }
  return chunk;
}

export interface ParsedWav {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  /** Interleaved 16-bit samples. */
  pcm: Int16Array;
  metadata: WavMetadata;
}

/** Reads a 16-bit PCM WAV file (any chunk order; unknown chunks skipped). */
export function parseWav(bytes: Uint8Array): ParsedWav {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const id = (offset: number) => String.fromCharCode(...bytes.subarray(offset, offset + 4));
  if (bytes.length < 12 || id(0) !== 'RIFF' || id(8) !== 'WAVE') throw new Error('not a RIFF/WAVE file');
  let format: { channels: number; sampleRate: number; bitsPerSample: number } | null = null;
  let pcm: Int16Array | null = null;
  const metadata: WavMetadata = {};
  for (let offset = 12; offset + 8 <= bytes.length; ) {
    const chunk = id(offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (body + size > bytes.length) throw new Error(`chunk ${chunk} runs past the end of the file`);
    if (chunk === 'fmt ') {
      if (view.getUint16(body, true) !== 1) throw new Error('not PCM');
      format = { channels: view.getUint16(body + 2, true), sampleRate: view.getUint32(body + 4, true), bitsPerSample: view.getUint16(body + 14, true) };
      if (format.bitsPerSample !== BITS) throw new Error(`${format.bitsPerSample}-bit PCM, not 16-bit`);
    } else if (chunk === 'data') {
      pcm = new Int16Array(size / 2);
      for (let i = 0; i < pcm.length; i++) pcm[i] = view.getInt16(body + 2 * i, true);
    } else if (chunk === 'LIST' && id(body) === 'INFO') {
      for (let f = body + 4; f + 8 <= body + size; ) {
        const fieldSize = view.getUint32(f + 4, true);
        const text = new TextDecoder().decode(bytes.subarray(f + 8, f + 8 + fieldSize)).replace(/\0+$/, '');
        const key = INFO_IDS.find(([, infoId]) => infoId === id(f))?.[0];
        if (key === 'seed') {
          const m = SEED_COMMENT.exec(text);
          if (m) metadata.seed = Number(m[1]);
        } else if (key) metadata[key] = text;
        f += 8 + fieldSize + (fieldSize % 2);
      }
    }
    offset = body + size + (size % 2);
  }
  if (!format || !pcm) throw new Error('a WAV file needs fmt and data chunks');
  return { ...format, pcm, metadata };
}
