import fs from 'node:fs';
import { ProtoError, readFields, readVarint, readVarints, utf8, Wire } from '../pipelines/onnx/protobuf.js';
import { ModelFileError, quoteName } from './model-file-error.js';
import type { OnnxTensorData } from './onnx-model.js';

/**
 * The main graph of an ONNX model as far as weights go: its nodes (names, operators, inputs,
 * integer attributes, metadata) and its initializers (name, shape, type, where the values lie),
 * read without touching the values. It reads from a buffer or straight from a file, fetching
 * only the bytes of field headers and nodes, so a 2 GB graph can be examined in a few MB.
 */

export interface GraphNode {
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  /** INT and INTS attributes (transB, perm, …). */
  attributes: Record<string, number | number[]>;
  /** metadata_props, where the dynamo exporter keeps `pkg.torch.onnx.name_scopes`. */
  metadata: Record<string, string>;
}

export interface GraphInitializer {
  name: string;
  dims: number[];
  dataType: number;
  data: OnnxTensorData;
  /** Where its TensorProto's payload lies in the model. */
  start: number;
  end: number;
}

export interface GraphStructure {
  nodes: GraphNode[];
  initializers: GraphInitializer[];
}

/** Random access to a model's bytes. */
export interface ByteSource {
  readonly length: number;
  /** The bytes in [start, end); valid until the next call. */
  bytes(start: number, end: number): Uint8Array;
}

export const bufferSource = (buf: Uint8Array): ByteSource => ({ length: buf.length, bytes: (start, end) => buf.subarray(start, end) });

const WINDOW = 64 * 1024;

/** Reads `file` through a small window that moves with the reader: only what is asked for is read. */
export function fileSource(fd: number, length: number): ByteSource {
  let windowStart = 0;
  let window = new Uint8Array(0);
  return {
    length,
    bytes(start, end) {
      if (start >= windowStart && end <= windowStart + window.length) return window.subarray(start - windowStart, end - windowStart);
      const size = Math.min(length, Math.max(end, start + WINDOW)) - start;
      window = new Uint8Array(size);
      windowStart = start;
      const read = fs.readSync(fd, window, 0, size, start);
      if (read < end - start) throw new ProtoError('the file ended inside a field');
      return window.subarray(0, end - start);
    },
  };
}

/** Reads the structure of the model at `file` without reading its weights. */
export function readGraphStructureFile(file: string): GraphStructure {
  const fd = fs.openSync(file, 'r');
  try {
    return readGraphStructure(fileSource(fd, fs.fstatSync(fd).size));
  } finally {
    fs.closeSync(fd);
  }
}

export function readGraphStructure(source: ByteSource): GraphStructure {
  try {
    const structure: GraphStructure = { nodes: [], initializers: [] };
    for (const f of sourceFields(source, 0, source.length)) {
      if (f.field !== 7 || f.wire !== Wire.Bytes) continue;
      for (const g of sourceFields(source, f.start, f.end)) {
        if (g.wire !== Wire.Bytes) continue;
        if (g.field === 1) structure.nodes.push(node(source.bytes(g.start, g.end)));
        else if (g.field === 5) structure.initializers.push(initializer(source, g.start, g.end));
      }
    }
    return structure;
  } catch (err) {
    if (err instanceof ProtoError) throw new ModelFileError(`Not a valid ONNX model: it is not a well-formed protobuf message (${err.message}).`);
    throw err;
  }
}

interface SourceField {
  field: number;
  wire: Wire;
  value: bigint;
  start: number;
  end: number;
}

/** The fields of the message in [start, end), as protobuf.ts's readFields, fetching only their headers. */
function* sourceFields(source: ByteSource, start: number, end: number): Generator<SourceField> {
  let pos = start;
  const varint = (): bigint => {
    const head = source.bytes(pos, Math.min(end, pos + 10));
    const [value, next] = readVarint(head, 0, head.length);
    pos += next;
    return value;
  };
  while (pos < end) {
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n) as Wire;
    if (field === 0) throw new ProtoError('field number 0');
    if (wire === Wire.Varint) {
      const value = varint();
      yield { field, wire, value, start: pos, end: pos };
    } else if (wire === Wire.Fixed64 || wire === Wire.Fixed32) {
      pos += wire === Wire.Fixed64 ? 8 : 4;
      if (pos > end) throw new ProtoError('truncated fixed-size field');
      yield { field, wire, value: 0n, start: pos, end: pos };
    } else if (wire === Wire.Bytes) {
      const length = varint();
      if (length > BigInt(end - pos)) throw new ProtoError('length-delimited field runs past its message');
      const s = pos;
      pos += Number(length);
      yield { field, wire, value: length, start: s, end: pos };
    } else {
      throw new ProtoError(`unsupported wire type ${wire}`);
    }
  }
}

function node(buf: Uint8Array): GraphNode {
  const n: GraphNode = { name: '', op: '', inputs: [], outputs: [], attributes: {}, metadata: {} };
  for (const f of readFields(buf)) {
    if (f.wire !== Wire.Bytes) continue;
    if (f.field === 1) n.inputs.push(utf8(buf, f));
    else if (f.field === 2) n.outputs.push(utf8(buf, f));
    else if (f.field === 3) n.name = utf8(buf, f);
    else if (f.field === 4) n.op = utf8(buf, f);
    else if (f.field === 5) attribute(buf, f.start, f.end, n.attributes);
    else if (f.field === 9) {
      const [key, value] = entry(buf, f.start, f.end);
      n.metadata[key] = value;
    }
  }
  return n;
}

function attribute(buf: Uint8Array, start: number, end: number, into: GraphNode['attributes']) {
  let name = '';
  let int: number | undefined;
  let ints: number[] | undefined;
  for (const f of readFields(buf, start, end)) {
    if (f.field === 1 && f.wire === Wire.Bytes) name = utf8(buf, f);
    else if (f.field === 3 && f.wire === Wire.Varint) int = Number(BigInt.asIntN(64, f.value));
    else if (f.field === 8) ints = [...(ints ?? []), ...readVarints(buf, f).map((v) => Number(BigInt.asIntN(64, v)))];
  }
  if (name && ints) into[name] = ints;
  else if (name && int !== undefined) into[name] = int;
}

function entry(buf: Uint8Array, start: number, end: number): [string, string] {
  let key = '';
  let value = '';
  for (const f of readFields(buf, start, end)) {
    if (f.field === 1 && f.wire === Wire.Bytes) key = utf8(buf, f);
    else if (f.field === 2 && f.wire === Wire.Bytes) value = utf8(buf, f);
  }
  return [key, value];
}

/** A TensorProto's header fields; its values are located, never read. */
function initializer(source: ByteSource, start: number, end: number): GraphInitializer {
  const t: GraphInitializer = { name: '', dims: [], dataType: 0, data: { kind: 'other' }, start, end };
  let raw: SourceField | undefined;
  const floats: SourceField[] = [];
  let external = false;
  const entries: [string, string][] = [];
  for (const f of sourceFields(source, start, end)) {
    if (f.field === 1) {
      const bytes = source.bytes(f.start, f.end);
      if (f.wire === Wire.Varint) t.dims.push(Number(BigInt.asIntN(64, f.value)));
      else for (const d of readVarints(bytes, { ...f, start: 0, end: bytes.length })) t.dims.push(Number(BigInt.asIntN(64, d)));
    } else if (f.field === 2 && f.wire === Wire.Varint) t.dataType = Number(f.value);
    else if (f.field === 4) floats.push(f);
    else if (f.field === 8 && f.wire === Wire.Bytes) t.name = new TextDecoder().decode(source.bytes(f.start, f.end));
    else if (f.field === 9 && f.wire === Wire.Bytes) raw = f;
    else if (f.field === 13 && f.wire === Wire.Bytes) {
      const bytes = source.bytes(f.start, f.end).slice();
      entries.push(entry(bytes, 0, bytes.length));
    } else if (f.field === 14 && f.wire === Wire.Varint) external = f.value === 1n;
  }
  const location = entries.findLast(([k]) => k === 'location')?.[1];
  if (external || location !== undefined) {
    const number = (key: string) => {
      const v = entries.findLast(([k]) => k === key)?.[1];
      if (v === undefined) return null;
      if (!/^\d{1,15}$/.test(v)) throw new ModelFileError(`Not a valid ONNX model: tensor ${quoteName(t.name)} has external-data ${key} ${quoteName(v)}, which is not a byte count.`);
      return Number(v);
    };
    if (location === undefined) throw new ModelFileError(`Not a valid ONNX model: tensor ${quoteName(t.name)} is stored externally but names no location.`);
    t.data = { kind: 'external', location, offset: number('offset') ?? 0, length: number('length') };
  } else if (raw) {
    t.data = { kind: 'raw', start: raw.start, end: raw.end };
  } else if (floats.length === 1 && floats[0]!.wire === Wire.Bytes) {
    t.data = { kind: 'float_data', start: floats[0]!.start, end: floats[0]!.end };
  }
  return t;
}
