/**
 * The protobuf wire format, as far as ONNX files need it: a writer for the graphs Kiln builds and
 * a reader that walks fields without copying, so large models can be inspected in place.
 */

export const Wire = { Varint: 0, Fixed64: 1, Bytes: 2, Fixed32: 5 } as const;
export type Wire = (typeof Wire)[keyof typeof Wire];

export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private length = 0;

  private push(bytes: Uint8Array) {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private rawVarint(value: number | bigint) {
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
  }

  private key(field: number, wire: Wire) {
    this.rawVarint((field << 3) | wire);
  }

  varint(field: number, value: number | bigint): this {
    this.key(field, Wire.Varint);
    this.rawVarint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, Wire.Fixed32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, Wire.Bytes);
    this.rawVarint(value.length);
    this.push(value);
    return this;
  }

  /** Bytes that already are encoded fields, copied as they are (a field kept from a file being rewritten). */
  raw(encoded: Uint8Array): this {
    this.push(encoded);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.rawVarint(v);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}

/** One field as it lies in the buffer: a number for varints and fixed ints, a span for bytes. */
export interface ProtoField {
  field: number;
  wire: Wire;
  /** Varint value (as bigint) or fixed value. */
  value: bigint;
  /** For length-delimited fields: where the payload starts and ends in the buffer. */
  start: number;
  end: number;
}

export class ProtoError extends Error {}

/** Reads one varint at `pos`; returns it and the position after it. */
export function readVarint(buf: Uint8Array, pos: number, end: number): [bigint, number] {
  let result = 0n;
  for (let shift = 0n; ; shift += 7n) {
    if (pos >= end) throw new ProtoError('truncated varint');
    if (shift > 63n) throw new ProtoError('varint too long');
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return [result, pos];
  }
}

/** Walks the fields of the message in `buf[start, end)`. Throws ProtoError on malformed input. */
export function* readFields(buf: Uint8Array, start = 0, end = buf.length): Generator<ProtoField> {
  let pos = start;
  const varint = (): bigint => {
    const [value, next] = readVarint(buf, pos, end);
    pos = next;
    return value;
  };
  while (pos < end) {
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n) as Wire;
    if (field === 0) throw new ProtoError('field number 0');
    switch (wire) {
      case Wire.Varint:
        yield { field, wire, value: varint(), start: pos, end: pos };
        break;
      case Wire.Fixed64: {
        if (pos + 8 > end) throw new ProtoError('truncated fixed64');
        const value = new DataView(buf.buffer, buf.byteOffset + pos, 8).getBigUint64(0, true);
        pos += 8;
        yield { field, wire, value, start: pos - 8, end: pos };
        break;
      }
      case Wire.Fixed32: {
        if (pos + 4 > end) throw new ProtoError('truncated fixed32');
        const value = BigInt(new DataView(buf.buffer, buf.byteOffset + pos, 4).getUint32(0, true));
        pos += 4;
        yield { field, wire, value, start: pos - 4, end: pos };
        break;
      }
      case Wire.Bytes: {
        const len = varint();
        if (len > BigInt(end - pos)) throw new ProtoError('length-delimited field runs past its message');
        const s = pos;
        pos += Number(len);
        yield { field, wire, value: len, start: s, end: pos };
        break;
      }
      default:
        throw new ProtoError(`unsupported wire type ${wire}`);
    }
  }
}

/** Decodes packed (or single) varints of a repeated field. */
export function readVarints(buf: Uint8Array, f: ProtoField): bigint[] {
  if (f.wire === Wire.Varint) return [f.value];
  const out: bigint[] = [];
  for (let pos = f.start; pos < f.end; ) {
    const [value, next] = readVarint(buf, pos, f.end);
    out.push(value);
    pos = next;
  }
  return out;
}

export const utf8 = (buf: Uint8Array, f: ProtoField) => new TextDecoder().decode(buf.subarray(f.start, f.end));
