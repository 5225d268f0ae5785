import fs from 'node:fs';
import path from 'node:path';
import { fromHalfArray } from './float16.js';
import { type ProtoField, readFields, readVarints, utf8, Wire } from './protobuf.js';

/**
 * Rewrites an ONNX model that computes in float16 into one that computes in float32: what
 * diffusers does when it upcasts a VAE (`vae.to(torch.float32)`, where its config says
 * `force_upcast`: SDXL's VAE overflows in half precision). Every float16 weight becomes the
 * float32 of the same value, every float16 type (inputs, outputs, value infos, Cast targets,
 * dtype attributes, constants) becomes float32; nothing else changes, so the graph computes
 * the same function in the wider type. Weights in external data files are read from `dir`
 * and written into the model, since a model made from bytes cannot find them beside it.
 *
 * Field numbers are those of onnx.proto3. The walk copies unchanged fields by reference, so a
 * model with nothing in float16 costs one pass and no copy.
 */

const FLOAT = 1;
const FLOAT16 = 10;
/** Integer attributes that name an element type (Cast's `to`, the Random* and EyeLike `dtype`). */
const TYPE_ATTRIBUTES = new Set(['to', 'dtype', 'output_dtype']);
const MAX_MODEL_BYTES = 2 ** 31 - 1;

export interface UpcastResult {
  /** Whether anything was float16; when not, `bytes` is the model as it came. */
  changed: boolean;
  bytes: Uint8Array;
}

export function upcastFloat16Model(bytes: Uint8Array, dir: string): UpcastResult {
  const walker = new Upcaster(bytes, dir);
  const out = walker.model();
  if (!walker.changed) return { changed: false, bytes };
  if (out.length > MAX_MODEL_BYTES) throw new Error(`the model in float32 would be ${out.length} bytes, more than an ONNX file can hold`);
  return { changed: true, bytes: out.finish() };
}

/** Encoded protobuf as a list of byte ranges, concatenated once at the end. */
class Encoded {
  parts: Uint8Array[] = [];
  length = 0;

  raw(b: Uint8Array) {
    this.parts.push(b);
    this.length += b.length;
  }

  varint(value: number | bigint) {
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.raw(Uint8Array.from(out));
  }

  key(field: number, wire: Wire) {
    this.varint((field << 3) | wire);
  }

  bytes(field: number, payload: Encoded | Uint8Array) {
    this.key(field, Wire.Bytes);
    this.varint(payload.length);
    if (payload instanceof Uint8Array) this.raw(payload);
    else for (const p of payload.parts) this.raw(p);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const p of this.parts) {
      out.set(p, offset);
      offset += p.length;
    }
    return out;
  }
}

type Handler = (out: Encoded, f: ProtoField) => boolean;

class Upcaster {
  changed = false;

  constructor(
    private readonly buf: Uint8Array,
    private readonly dir: string,
  ) {}

  model(): Encoded {
    return this.message(0, this.buf.length, (out, f) => {
      if (f.field === 7) return this.nested(out, f, (m) => this.graph(m));
      if (f.field === 25) return this.nested(out, f, (m) => this.func(m));
      return false;
    });
  }

  /** Copies the message in [start, end), letting `handle` write the fields it rewrites (returning true). */
  private message(start: number, end: number, handle: Handler): Encoded {
    const out = new Encoded();
    for (const f of readFields(this.buf, start, end)) if (!handle(out, f)) this.copy(out, f);
    return out;
  }

  private nested(out: Encoded, f: ProtoField, rewrite: (f: ProtoField) => Encoded): true {
    out.bytes(f.field, rewrite(f));
    return true;
  }

  private copy(out: Encoded, f: ProtoField) {
    out.key(f.field, f.wire);
    if (f.wire === Wire.Varint) out.varint(f.value);
    else if (f.wire === Wire.Bytes) {
      out.varint(f.end - f.start);
      out.raw(this.buf.subarray(f.start, f.end));
    } else out.raw(this.buf.subarray(f.start, f.end));
  }

  private graph(m: ProtoField): Encoded {
    return this.message(m.start, m.end, (out, f) => {
      switch (f.field) {
        case 1:
          return this.nested(out, f, (n) => this.node(n));
        case 5:
          return this.nested(out, f, (t) => this.tensor(t));
        case 15:
          return this.nested(out, f, (t) => this.sparseTensor(t));
        case 11:
        case 12:
        case 13:
          return this.nested(out, f, (v) => this.valueInfo(v));
        default:
          return false;
      }
    });
  }

  private func(m: ProtoField): Encoded {
    return this.message(m.start, m.end, (out, f) => {
      if (f.field === 7) return this.nested(out, f, (n) => this.node(n));
      if (f.field === 12) return this.nested(out, f, (v) => this.valueInfo(v));
      return false;
    });
  }

  private node(m: ProtoField): Encoded {
    return this.message(m.start, m.end, (out, f) => (f.field === 5 ? this.nested(out, f, (a) => this.attribute(a)) : false));
  }

  private attribute(m: ProtoField): Encoded {
    let name = '';
    for (const f of readFields(this.buf, m.start, m.end)) if (f.field === 1) name = utf8(this.buf, f);
    return this.message(m.start, m.end, (out, f) => {
      switch (f.field) {
        case 3:
          if (!TYPE_ATTRIBUTES.has(name) || f.value !== BigInt(FLOAT16)) return false;
          this.changed = true;
          out.key(3, Wire.Varint);
          out.varint(FLOAT);
          return true;
        case 5:
        case 10:
          return this.nested(out, f, (t) => this.tensor(t));
        case 22:
        case 23:
          return this.nested(out, f, (t) => this.sparseTensor(t));
        case 6:
        case 11:
          return this.nested(out, f, (g) => this.graph(g));
        case 14:
        case 15:
          return this.nested(out, f, (t) => this.typeProto(t));
        default:
          return false;
      }
    });
  }

  private sparseTensor(m: ProtoField): Encoded {
    return this.message(m.start, m.end, (out, f) => (f.field === 1 ? this.nested(out, f, (t) => this.tensor(t)) : false));
  }

  private valueInfo(m: ProtoField): Encoded {
    return this.message(m.start, m.end, (out, f) => (f.field === 2 ? this.nested(out, f, (t) => this.typeProto(t)) : false));
  }

  private typeProto(m: ProtoField): Encoded {
    return this.message(m.start, m.end, (out, f) => {
      switch (f.field) {
        case 1: // tensor_type
        case 8: // sparse_tensor_type
          return this.nested(out, f, (t) => this.tensorType(t));
        case 4: // sequence_type { elem_type: TypeProto }
        case 9: // optional_type { elem_type: TypeProto }
          return this.nested(out, f, (s) => this.message(s.start, s.end, (o, e) => (e.field === 1 ? this.nested(o, e, (t) => this.typeProto(t)) : false)));
        case 5: // map_type { value_type: TypeProto }
          return this.nested(out, f, (s) => this.message(s.start, s.end, (o, e) => (e.field === 2 ? this.nested(o, e, (t) => this.typeProto(t)) : false)));
        default:
          return false;
      }
    });
  }

  private tensorType(m: ProtoField): Encoded {
    return this.message(m.start, m.end, (out, f) => {
      if (f.field !== 1 || f.value !== BigInt(FLOAT16)) return false;
      this.changed = true;
      out.key(1, Wire.Varint);
      out.varint(FLOAT);
      return true;
    });
  }

  /**
   * A float16 tensor becomes float32 raw_data; a tensor of another type stays as it is, except
   * that external data is read in.
   */
  private tensor(m: ProtoField): Encoded {
    let dataType = 0;
    const external = new Map<string, string>();
    for (const f of readFields(this.buf, m.start, m.end)) {
      if (f.field === 2) dataType = Number(f.value);
      else if (f.field === 13) {
        let key = '';
        let value = '';
        for (const e of readFields(this.buf, f.start, f.end)) {
          if (e.field === 1) key = utf8(this.buf, e);
          else if (e.field === 2) value = utf8(this.buf, e);
        }
        external.set(key, value);
      }
    }
    const half = dataType === FLOAT16;
    if (!half && !external.size) return this.message(m.start, m.end, () => false);
    if (half) this.changed = true;

    const halves: number[] = [];
    let data: Uint8Array | null = external.size ? this.externalData(external) : null;
    const out = this.message(m.start, m.end, (o, f) => {
      switch (f.field) {
        case 2:
          o.key(2, Wire.Varint);
          o.varint(half ? FLOAT : dataType);
          return true;
        case 9:
          data = this.buf.subarray(f.start, f.end);
          return true;
        case 5: // int32_data: float16 values as their bit patterns, packed or not
          if (!half) return false;
          for (const v of readVarints(this.buf, f)) halves.push(Number(v));
          return true;
        case 13:
        case 14:
          return true;
        default:
          return false;
      }
    });
    const raw = half ? floatBytes(data ? fromHalfArray(halfBits(data)) : fromHalfArray(Uint16Array.from(halves))) : data!;
    out.bytes(9, raw);
    return out;
  }

  private externalData(entries: Map<string, string>): Uint8Array {
    const location = entries.get('location');
    if (!location) throw new Error('a tensor has external data without a location');
    const file = path.resolve(this.dir, location);
    if (path.relative(this.dir, file).startsWith('..')) throw new Error(`external data ${JSON.stringify(location)} lies outside the model's folder`);
    const offset = Number(entries.get('offset') ?? 0);
    const length = entries.has('length') ? Number(entries.get('length')) : fs.statSync(file).size - offset;
    const fd = fs.openSync(file, 'r');
    try {
      const data = new Uint8Array(length);
      if (fs.readSync(fd, data, 0, length, offset) !== length) throw new Error(`external data ${JSON.stringify(location)} ends before offset ${offset} + ${length}`);
      return data;
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Little-endian 16-bit patterns from bytes that may lie at any offset. */
function halfBits(bytes: Uint8Array): Uint16Array {
  const bits = new Uint16Array(bytes.length / 2);
  new Uint8Array(bits.buffer).set(bytes);
  return bits;
}

function floatBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
