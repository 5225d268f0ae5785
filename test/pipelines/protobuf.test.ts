import { describe, expect, it } from 'vitest';
import { ProtoError, ProtoWriter, readFields, readVarints, utf8, Wire } from '../../src/pipelines/onnx/protobuf.js';

describe('the protobuf wire codec', () => {
  it('reads back what it writes: varints, floats, strings, nested messages, packed lists', () => {
    const bytes = new ProtoWriter()
      .varint(1, 300)
      .varint(2, 2n ** 40n)
      .float(3, 1.5)
      .string(4, 'héllo')
      .message(5, (m) => m.varint(1, 7).string(2, 'inner'))
      .packedVarints(6, [1, 128, 16384])
      .finish();
    const fields = [...readFields(bytes)];
    expect(fields.map((f) => [f.field, f.wire])).toEqual([
      [1, Wire.Varint],
      [2, Wire.Varint],
      [3, Wire.Fixed32],
      [4, Wire.Bytes],
      [5, Wire.Bytes],
      [6, Wire.Bytes],
    ]);
    expect(fields[0]!.value).toBe(300n);
    expect(fields[1]!.value).toBe(2n ** 40n);
    expect(new DataView(bytes.buffer, fields[2]!.start, 4).getFloat32(0, true)).toBe(1.5);
    expect(utf8(bytes, fields[3]!)).toBe('héllo');
    const inner = [...readFields(bytes, fields[4]!.start, fields[4]!.end)];
    expect(inner[0]!.value).toBe(7n);
    expect(utf8(bytes, inner[1]!)).toBe('inner');
    expect(readVarints(bytes, fields[5]!)).toEqual([1n, 128n, 16384n]);
  });

  it('refuses truncated or overlong input instead of reading past it', () => {
    const good = new ProtoWriter().string(1, 'abcdef').finish();
    expect(() => [...readFields(good.subarray(0, good.length - 2))]).toThrow(ProtoError);
    expect(() => [...readFields(Uint8Array.of(0x08, 0x80))]).toThrow(ProtoError);
    expect(() => [...readFields(Uint8Array.of(0x0b))]).toThrow(ProtoError); // wire type 3 (groups)
    expect(() => [...readFields(Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f))]).toThrow(ProtoError);
  });
});
