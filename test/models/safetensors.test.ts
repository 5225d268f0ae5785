import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelFileError } from '../../src/models/model-file-error.js';
import { parseSafetensors, readSafetensorsHeader, tensorAsFloat32, withSafetensorsMetadata, writeSafetensors } from '../../src/models/safetensors.js';

/** A file from a header (object, raw text or bytes), a data section of `dataBytes`, and optionally a lying length prefix. */
function craft(header: unknown, dataBytes: number, headerLength?: bigint): Uint8Array {
  const json = header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

const f32 = (offsets: [number, number], shape = [(offsets[1] - offsets[0]) / 4]) => ({ dtype: 'F32', shape, data_offsets: offsets });

describe('safetensors files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-safetensors-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('round-trip: what the writer writes parses back, from bytes and from a file, with its metadata and values', async () => {
    const a = Float32Array.of(1, -2.5, 3.25, 0, 1e-3, 65504);
    const b = Float32Array.of(0.5, -1, 2, 1 / 3);
    const bytes = writeSafetensors(
      { a: { dtype: 'F32', shape: [2, 3], data: a }, b: { dtype: 'F16', shape: [4], data: b }, empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) } },
      { format: 'pt', note: 'héllo' },
    );
    const header = parseSafetensors(bytes);
    expect(header.metadata).toEqual({ format: 'pt', note: 'héllo' });
    expect(header.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      ['a', 'F32', [2, 3]],
      ['b', 'F16', [4]],
      ['empty', 'F32', [0, 4]],
    ]);
    expect(header.dataStart % 8).toBe(0);
    expect(tensorAsFloat32(bytes, header.tensors[0]!)).toEqual(a);
    const half = tensorAsFloat32(bytes, header.tensors[1]!);
    expect(Array.from(half.slice(0, 3))).toEqual([0.5, -1, 2]);
    expect(half[3]).toBeCloseTo(1 / 3, 3);

    const file = path.join(dir, 'ok.safetensors');
    await fs.writeFile(file, bytes);
    expect(await readSafetensorsHeader(file)).toEqual(header);
  });

  it('reads BF16 and F16 tensors as float32', () => {
    const bytes = craft({ h: { dtype: 'F16', shape: [3], data_offsets: [0, 6] }, b: { dtype: 'BF16', shape: [2], data_offsets: [6, 10] } }, 10);
    const header = parseSafetensors(bytes);
    const data = new DataView(bytes.buffer, header.dataStart);
    [0x3c00, 0xc000, 0x0001].forEach((v, i) => data.setUint16(2 * i, v, true)); // 1, -2, smallest subnormal
    [0x3fc0, 0xbf80].forEach((v, i) => data.setUint16(6 + 2 * i, v, true)); // 1.5, -1
    expect(Array.from(tensorAsFloat32(bytes, header.tensors[0]!))).toEqual([1, -2, 2 ** -24]);
    expect(Array.from(tensorAsFloat32(bytes, header.tensors[1]!))).toEqual([1.5, -1]);
  });

  const refusals: [string, Uint8Array, RegExp][] = [
    ['a header length past the end of the file', craft({ a: f32([0, 4]) }, 4, 1000n), /header length 1000 runs past the end/],
    ['an absurd header length', craft({}, 0, 2n ** 62n), /over the limit/],
    ['a file shorter than its length prefix', Uint8Array.of(1, 0, 0), /fewer than the 8/],
    ['a text file', new TextEncoder().encode('lora weights, as text: 0.1 0.2 0.3\n'), /not a safetensors file at all/],
    ['a file with no header after its length', craft(new Uint8Array(0), 40, 2n ** 40n), /not a safetensors file at all/],
    ['a header that is not JSON', craft('{"a": nope}', 0), /not JSON/],
    ['a header that is not UTF-8', craft(Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d), 0), /not UTF-8/],
    ['a header that is not an object', craft('[1, 2]', 0), /not a JSON object/],
    ['an unknown dtype', craft({ a: { dtype: 'F17', shape: [1], data_offsets: [0, 4] } }, 4), /dtype "F17"/],
    ['a negative dimension', craft({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /non-negative integers/],
    ['a shape that does not match its offsets', craft({ a: f32([0, 8], [2, 2]) }, 8), /needs 16 bytes but its data_offsets span 8/],
    ['reversed offsets', craft({ a: f32([8, 0], [2]) }, 8), /begin ≤ end/],
    ['overlapping ranges', craft({ a: f32([0, 8]), b: f32([4, 12]) }, 12), /"b" overlaps tensor "a"/],
    ['a hole between tensors', craft({ a: f32([0, 4]), b: f32([8, 12]) }, 12), /4 bytes before tensor "b" belong to no tensor/],
    ['trailing bytes', craft({ a: f32([0, 8]) }, 12), /last 4 bytes belong to no tensor/],
    ['offsets past the end', craft({ a: f32([0, 16]) }, 8), /ends at byte 16 of a 8-byte data section/],
    ['metadata that is not a string map', craft({ __metadata__: { n: 1 }, a: f32([0, 4]) }, 4), /__metadata__ value "n" is not a string/],
  ];

  it.each(refusals)('refuses %s with one sentence', (_, bytes, message) => {
    expect(() => parseSafetensors(bytes)).toThrow(ModelFileError);
    expect(() => parseSafetensors(bytes)).toThrow(message);
    const error = (() => {
      try {
        parseSafetensors(bytes);
      } catch (err) {
        return err as ModelFileError;
      }
    })()!;
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.message).toMatch(/^Not a valid safetensors file: [^\n]+\.$/);
  });

  it('refuses a truncated file, from bytes and from disk', async () => {
    const whole = writeSafetensors({ a: { dtype: 'F32', shape: [16], data: new Float32Array(16) } });
    const cut = whole.subarray(0, whole.length - 10);
    expect(() => parseSafetensors(cut)).toThrow(/ends at byte 64 of a 54-byte data section/);
    const file = path.join(dir, 'cut.safetensors');
    await fs.writeFile(file, cut);
    await expect(readSafetensorsHeader(file)).rejects.toThrow(/ends at byte 64 of a 54-byte data section/);
    await fs.writeFile(file, whole.subarray(0, 20));
    await expect(readSafetensorsHeader(file)).rejects.toThrow(/runs past the end of the 20-byte file/);
    await fs.writeFile(file, 'not weights at all, just some words in a text file\n');
    await expect(readSafetensorsHeader(file)).rejects.toThrow(/not a safetensors file at all/);
  });

  it('merges metadata into a file without touching its tensors', () => {
    const original = writeSafetensors({ a: { dtype: 'F16', shape: [3], data: Float32Array.of(1, 2, 3) }, b: { dtype: 'F32', shape: [1, 2], data: Float32Array.of(4, 5) } }, { kept: 'yes', replaced: 'old' });
    const stamped = withSafetensorsMetadata(original, { replaced: 'new', added: 'ünïcode ✓' });
    const before = parseSafetensors(original);
    const after = parseSafetensors(stamped);
    expect(after.metadata).toEqual({ kept: 'yes', replaced: 'new', added: 'ünïcode ✓' });
    expect(after.dataStart % 8).toBe(0);
    expect(after.tensors.map((t) => [t.name, t.dtype, t.shape, Array.from(tensorAsFloat32(stamped, t))])).toEqual(
      before.tensors.map((t) => [t.name, t.dtype, t.shape, Array.from(tensorAsFloat32(original, t))]),
    );
    expect(Buffer.from(stamped.subarray(after.dataStart)).equals(Buffer.from(original.subarray(before.dataStart)))).toBe(true);
  });
});
