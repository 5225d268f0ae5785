import fs from 'node:fs/promises';
import { ProtoError, type ProtoField, readFields, readVarints, utf8, Wire } from './protobuf.js';

/**
 * What a pipeline needs to know about an ONNX graph before it creates a session for it: the
 * inputs and outputs it declares, the element types of its weights, the operator sets it
 * imports and how many bytes of weights it holds inside the file and in external data files.
 *
 * Read from the file in place, a window at a time: the walk skips every node and every
 * weight's values, so a graph with 2 GB of weights inside it costs a few hundred small reads,
 * and one whose weights lie in external files (FLUX's 24 GB transformer) costs a read of its
 * structure only. Field numbers are onnx.proto3's.
 */
export interface GraphSummary {
  inputs: GraphValue[];
  outputs: GraphValue[];
  /** Operator set domains the graph imports ('' is ONNX's own), less those its own functions define. */
  foreignDomains: string[];
  /** How many initializers the graph has of each ONNX element type. */
  weightTypes: Map<number, number>;
  /** Size of the graph file itself. */
  fileBytes: number;
  /** Bytes of weights read from each external data file, by location relative to the graph. */
  externalBytes: Map<string, number>;
}

export interface GraphValue {
  name: string;
  /** ONNX element type (TensorProto.DataType), or null for a value that is not a tensor. */
  elemType: number | null;
  /** Each dimension's size or symbolic name (null when neither is given); null when the rank is unknown. */
  shape: (number | string | null)[] | null;
}

/** ONNX element types by number, as onnxruntime names them. */
export const ELEMENT_TYPE_NAMES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  16: 'bfloat16',
  17: 'float8e4m3fn',
  18: 'float8e4m3fnuz',
  19: 'float8e5m2',
  20: 'float8e5m2fnuz',
  21: 'uint4',
  22: 'int4',
  23: 'float4e2m1',
};

/** Bytes per element of the types weights come in; 4-bit types count half. */
const ELEMENT_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1, 21: 0.5, 22: 0.5, 23: 0.5 };

export class GraphSummaryError extends Error {}

const WINDOW = 64 * 1024;
/** Sub-messages at most this long (value infos, tensor headers) are read whole and walked in memory. */
const SMALL = 1024 * 1024;

export async function summarizeGraph(file: string): Promise<GraphSummary> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const reader = new WindowReader(handle, size);
    try {
      return await readModel(reader, size);
    } catch (err) {
      if (err instanceof ProtoError) throw new GraphSummaryError(`${file} is not a well-formed ONNX file (${err.message})`);
      throw err;
    }
  } finally {
    await handle.close();
  }
}

async function readModel(r: WindowReader, size: number): Promise<GraphSummary> {
  const summary: GraphSummary = { inputs: [], outputs: [], foreignDomains: [], weightTypes: new Map(), fileBytes: size, externalBytes: new Map() };
  const imported = new Set<string>();
  const defined = new Set<string>();
  const initialized = new Set<string>();
  let graphs = 0;
  for await (const f of r.fields(0, size)) {
    if (f.field === 7 && f.wire === Wire.Bytes) {
      graphs++;
      await readGraph(r, f, summary, initialized);
    } else if (f.field === 8 && f.wire === Wire.Bytes) {
      const opset = await r.bytes(f);
      for (const g of readFields(opset)) if (g.field === 1 && g.wire === Wire.Bytes) imported.add(utf8(opset, g));
    } else if (f.field === 25 && f.wire === Wire.Bytes) {
      // Local functions (dynamo exports have them) define the operators of their own domain.
      for await (const g of r.fields(f.start, f.end)) if (g.field === 10 && g.wire === Wire.Bytes) defined.add(new TextDecoder().decode(await r.bytes(g)));
    }
  }
  if (graphs !== 1) throw new ProtoError(graphs ? 'more than one graph' : 'no graph');
  summary.inputs = summary.inputs.filter((v) => !initialized.has(v.name));
  summary.foreignDomains = [...imported].filter((d) => !ONNX_DOMAINS.has(d) && !defined.has(d)).sort();
  return summary;
}

/** Domains whose operators onnxruntime implements itself. */
const ONNX_DOMAINS = new Set(['', 'ai.onnx', 'ai.onnx.ml', 'com.microsoft', 'com.microsoft.nchwc', 'com.microsoft.experimental', 'ai.onnx.training', 'ai.onnx.preview.training']);

async function readGraph(r: WindowReader, graph: ProtoField, summary: GraphSummary, initialized: Set<string>) {
  for await (const f of r.fields(graph.start, graph.end)) {
    if (f.wire !== Wire.Bytes) continue;
    if (f.field === 5) await readInitializer(r, f, summary, initialized);
    else if (f.field === 11 || f.field === 12) {
      const bytes = await r.bytes(f);
      (f.field === 11 ? summary.inputs : summary.outputs).push(readValueInfo(bytes));
    }
  }
}

/** A TensorProto's header, its values skipped: element type, name, dims and where external data lies. */
async function readInitializer(r: WindowReader, t: ProtoField, summary: GraphSummary, initialized: Set<string>) {
  let type = 0;
  let name = '';
  let dims: bigint[] = [];
  let external = false;
  const entries: Record<string, string> = {};
  for await (const f of r.fields(t.start, t.end)) {
    if (f.field === 2 && f.wire === Wire.Varint) type = Number(f.value);
    else if (f.field === 1 && f.wire === Wire.Varint) dims.push(f.value);
    else if (f.field === 1 && f.wire === Wire.Bytes) {
      const packed = await r.bytes(f);
      dims = dims.concat(readVarints(packed, { ...f, start: 0, end: packed.length }));
    }
    else if (f.field === 8 && f.wire === Wire.Bytes) name = new TextDecoder().decode(await r.bytes(f));
    else if (f.field === 14 && f.wire === Wire.Varint) external = f.value === 1n;
    else if (f.field === 13 && f.wire === Wire.Bytes) {
      const entry = await r.bytes(f);
      let key = '';
      let value = '';
      for (const e of readFields(entry)) {
        if (e.field === 1 && e.wire === Wire.Bytes) key = utf8(entry, e);
        else if (e.field === 2 && e.wire === Wire.Bytes) value = utf8(entry, e);
      }
      entries[key] = value;
    }
  }
  initialized.add(name);
  summary.weightTypes.set(type, (summary.weightTypes.get(type) ?? 0) + 1);
  if (external && entries.location) {
    const elements = dims.reduce((a, b) => a * Number(b), 1);
    const length = entries.length !== undefined ? Number(entries.length) : Math.ceil(elements * (ELEMENT_BYTES[type] ?? 4));
    summary.externalBytes.set(entries.location, (summary.externalBytes.get(entries.location) ?? 0) + length);
  }
}

function readValueInfo(buf: Uint8Array): GraphValue {
  const value: GraphValue = { name: '', elemType: null, shape: null };
  for (const f of readFields(buf)) {
    if (f.field === 1 && f.wire === Wire.Bytes) value.name = utf8(buf, f);
    else if (f.field === 2 && f.wire === Wire.Bytes) {
      for (const t of readFields(buf, f.start, f.end)) {
        if (t.field !== 1 || t.wire !== Wire.Bytes) continue; // tensor_type
        for (const g of readFields(buf, t.start, t.end)) {
          if (g.field === 1 && g.wire === Wire.Varint) value.elemType = Number(g.value);
          else if (g.field === 2 && g.wire === Wire.Bytes) value.shape = readShape(buf, g);
        }
      }
    }
  }
  return value;
}

function readShape(buf: Uint8Array, shape: ProtoField): (number | string | null)[] {
  const dims: (number | string | null)[] = [];
  for (const d of readFields(buf, shape.start, shape.end)) {
    if (d.field !== 1 || d.wire !== Wire.Bytes) continue;
    let dim: number | string | null = null;
    for (const g of readFields(buf, d.start, d.end)) {
      if (g.field === 1 && g.wire === Wire.Varint) dim = Number(BigInt.asIntN(64, g.value));
      else if (g.field === 2 && g.wire === Wire.Bytes) dim = utf8(buf, g);
    }
    dims.push(dim);
  }
  return dims;
}

/** Protobuf fields read from a file through a small window, which moves where the walk jumps. */
class WindowReader {
  private buf = new Uint8Array(0);
  private at = 0;

  constructor(
    private readonly handle: fs.FileHandle,
    private readonly size: number,
  ) {}

  /** Makes sure bytes [pos, pos + n) are in the window (n at most WINDOW), as far as the file goes. */
  private async ensure(pos: number, n: number) {
    if (pos >= this.at && pos + n <= this.at + this.buf.length) return;
    const length = Math.min(Math.max(n, WINDOW), this.size - pos);
    const buf = new Uint8Array(Math.max(length, 0));
    const { bytesRead } = await this.handle.read(buf, 0, buf.length, pos);
    this.buf = buf.subarray(0, bytesRead);
    this.at = pos;
  }

  /** The fields of the message at [start, end) of the file; length-delimited ones are given as spans, unread. */
  async *fields(start: number, end: number): AsyncGenerator<ProtoField> {
    let pos = start;
    while (pos < end) {
      // A key and a varint or length take at most 20 bytes.
      await this.ensure(pos, Math.min(20, end - pos));
      const local = pos - this.at;
      const f = nextHeader(this.buf, local, Math.min(this.buf.length, local + (end - pos)));
      const field: ProtoField = { ...f, start: f.start + this.at, end: f.end + this.at };
      if (field.end > end) throw new ProtoError('a field runs past its message');
      pos = field.end;
      yield field;
    }
  }

  /** The payload of a length-delimited field, copied out of the file. */
  async bytes(f: ProtoField): Promise<Uint8Array> {
    const length = f.end - f.start;
    if (length > SMALL) throw new ProtoError(`a ${length}-byte header field`);
    await this.ensure(f.start, length);
    return this.buf.slice(f.start - this.at, f.end - this.at);
  }
}

/**
 * The header of the field at `pos`: its key, and its value or length, without reading a
 * length-delimited payload (which may lie far beyond the window).
 */
function nextHeader(buf: Uint8Array, pos: number, limit: number): ProtoField {
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= limit) throw new ProtoError('truncated varint');
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
    }
  };
  const key = varint();
  const field = Number(key >> 3n);
  const wire = Number(key & 7n) as Wire;
  if (field === 0) throw new ProtoError('field number 0');
  switch (wire) {
    case Wire.Varint: {
      const value = varint();
      return { field, wire, value, start: pos, end: pos };
    }
    case Wire.Fixed64:
      return { field, wire, value: 0n, start: pos, end: pos + 8 };
    case Wire.Fixed32:
      return { field, wire, value: 0n, start: pos, end: pos + 4 };
    case Wire.Bytes: {
      const length = varint();
      return { field, wire, value: length, start: pos, end: pos + Number(length) };
    }
    default:
      throw new ProtoError(`unsupported wire type ${wire}`);
  }
}
