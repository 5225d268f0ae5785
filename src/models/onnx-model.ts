import fs from 'node:fs/promises';
import { ProtoError, type ProtoField, readFields, readVarints, utf8, Wire } from '../pipelines/onnx/protobuf.js';
import { ModelFileError, quoteName } from './model-file-error.js';

/**
 * Reads an ONNX ModelProto in place with the protobuf walker: its inputs and outputs, opsets and
 * every tensor's name, shape, type and where its data lies, without copying any weights. Field
 * numbers are those of onnx.proto3.
 */

/** Protobuf cannot hold a message of 2 GiB or more; larger models keep weights in external files. */
export const ONNX_MAX_FILE_BYTES = 2 ** 31 - 1;
const MAX_GRAPH_DEPTH = 32;

/** TensorProto.DataType values a reader meets in practice. */
export const OnnxDataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
} as const;

/** Where a tensor's values are stored. Byte ranges are offsets into the model file. */
export type OnnxTensorData =
  | { kind: 'raw'; start: number; end: number }
  /** Packed float_data: little-endian float32s, laid out as raw_data would be. */
  | { kind: 'float_data'; start: number; end: number }
  | { kind: 'external'; location: string; offset: number; length: number | null }
  /** Any other typed field (int64_data, …), unpacked values, or no data at all. */
  | { kind: 'other' };

export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  data: OnnxTensorData;
  /** The graph it belongs to: '' for the main graph, else e.g. `loop_body/If_3.then_branch`. */
  scope: string;
}

export interface OnnxValueInfo {
  name: string;
  /** Tensor element type, or null for non-tensor values. */
  elemType: number | null;
  /** Each dimension's size or symbolic name (null when unnamed); null when the rank is unknown. */
  shape: (number | string | null)[] | null;
}

export interface OnnxModelInfo {
  irVersion: number;
  producer: string;
  opsets: { domain: string; version: number }[];
  /** The main graph's inputs that are not initializers: what a session is fed. */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** Initializers of the main graph and of every subgraph (If, Loop, Scan bodies). */
  initializers: OnnxTensor[];
  /** Every tensor anywhere in the model whose data lies in an external file. */
  externalTensors: OnnxTensor[];
}

const refuse = (problem: string) => new ModelFileError(`Not a valid ONNX model: ${problem}.`);

/** Reads and parses the ONNX file at `file`, refusing files protobuf cannot hold. */
export async function readOnnxModel(file: string): Promise<{ bytes: Uint8Array; info: OnnxModelInfo }> {
  const { size } = await fs.stat(file);
  if (size > ONNX_MAX_FILE_BYTES) {
    throw new ModelFileError(`The ONNX file is ${size} bytes; protobuf cannot hold 2 GiB or more, so large weights must be in external data files.`);
  }
  const bytes = new Uint8Array(await fs.readFile(file));
  return { bytes, info: inspectOnnx(bytes) };
}

export function inspectOnnx(bytes: Uint8Array): OnnxModelInfo {
  if (bytes.length > ONNX_MAX_FILE_BYTES) throw refuse('it is 2 GiB or more, which protobuf cannot hold');
  try {
    return new ModelReader(bytes).read();
  } catch (err) {
    if (err instanceof ProtoError) throw refuse(`it is not a well-formed protobuf message (${err.message})`);
    throw err;
  }
}

class ModelReader {
  private info: OnnxModelInfo = { irVersion: 0, producer: '', opsets: [], inputs: [], outputs: [], initializers: [], externalTensors: [] };

  constructor(private readonly buf: Uint8Array) {}

  read(): OnnxModelInfo {
    let graphs = 0;
    for (const f of readFields(this.buf)) {
      switch (f.field) {
        case 1:
          this.info.irVersion = Number(this.varint(f, 'ir_version'));
          break;
        case 2:
          this.info.producer = utf8(this.buf, this.bytes(f, 'producer_name'));
          break;
        case 7:
          graphs++;
          this.graph(this.bytes(f, 'graph'), '', 0, true);
          break;
        case 8:
          this.info.opsets.push(this.opset(this.bytes(f, 'opset_import')));
          break;
        case 20:
          this.trainingInfo(this.bytes(f, 'training_info'));
          break;
        case 25:
          this.func(this.bytes(f, 'functions'));
          break;
      }
    }
    if (this.info.irVersion < 1) throw refuse('it has no IR version');
    if (graphs !== 1) throw refuse(graphs ? 'it has more than one main graph' : 'it has no graph');
    const initialized = new Set(this.info.initializers.filter((t) => t.scope === '').map((t) => t.name));
    this.info.inputs = this.info.inputs.filter((v) => !initialized.has(v.name));
    return this.info;
  }

  private varint(f: ProtoField, what: string): bigint {
    if (f.wire !== Wire.Varint) throw refuse(`its ${what} field has the wrong wire type`);
    return f.value;
  }

  private bytes(f: ProtoField, what: string): ProtoField {
    if (f.wire !== Wire.Bytes) throw refuse(`its ${what} field has the wrong wire type`);
    return f;
  }

  private opset(m: ProtoField): { domain: string; version: number } {
    let domain = '';
    let version = 0;
    for (const f of readFields(this.buf, m.start, m.end)) {
      if (f.field === 1) domain = utf8(this.buf, this.bytes(f, 'opset domain'));
      else if (f.field === 2) version = Number(this.varint(f, 'opset version'));
    }
    return { domain, version };
  }

  private graph(m: ProtoField, scope: string, depth: number, main: boolean) {
    if (depth > MAX_GRAPH_DEPTH) throw refuse(`its graphs are nested more than ${MAX_GRAPH_DEPTH} deep`);
    for (const f of readFields(this.buf, m.start, m.end)) {
      switch (f.field) {
        case 1:
          this.node(this.bytes(f, 'node'), scope, depth);
          break;
        case 5:
          this.info.initializers.push(this.tensor(this.bytes(f, 'initializer'), scope));
          break;
        case 15:
          this.sparseTensor(this.bytes(f, 'sparse_initializer'), scope);
          break;
        case 11:
          if (main) this.info.inputs.push(this.valueInfo(this.bytes(f, 'input')));
          break;
        case 12:
          if (main) this.info.outputs.push(this.valueInfo(this.bytes(f, 'output')));
          break;
      }
    }
  }

  private node(m: ProtoField, scope: string, depth: number) {
    let name = '';
    let op = '';
    const attributes: ProtoField[] = [];
    for (const f of readFields(this.buf, m.start, m.end)) {
      if (f.field === 3) name = utf8(this.buf, this.bytes(f, 'node name'));
      else if (f.field === 4) op = utf8(this.buf, this.bytes(f, 'op_type'));
      else if (f.field === 5) attributes.push(this.bytes(f, 'attribute'));
    }
    const nodeScope = `${scope ? `${scope}/` : ''}${name || op || 'node'}`;
    for (const a of attributes) this.attribute(a, nodeScope, depth);
  }

  /** Tensors and subgraphs held by an attribute, whatever its declared type says. */
  private attribute(m: ProtoField, nodeScope: string, depth: number) {
    let name = '';
    const graphs: ProtoField[] = [];
    for (const f of readFields(this.buf, m.start, m.end)) {
      if (f.field === 1) name = utf8(this.buf, this.bytes(f, 'attribute name'));
      else if (f.field === 5 || f.field === 10) this.constant(this.tensor(this.bytes(f, 'attribute tensor'), nodeScope));
      else if (f.field === 22 || f.field === 23) this.sparseTensor(this.bytes(f, 'attribute sparse tensor'), nodeScope);
      else if (f.field === 6 || f.field === 11) graphs.push(this.bytes(f, 'attribute graph'));
    }
    for (const g of graphs) this.graph(g, `${nodeScope}.${name}`, depth + 1, false);
  }

  private sparseTensor(m: ProtoField, scope: string) {
    for (const f of readFields(this.buf, m.start, m.end)) {
      if (f.field === 1 || f.field === 2) this.constant(this.tensor(this.bytes(f, 'sparse tensor part'), scope));
    }
  }

  /** A tensor that is not an initializer: only its external data matters here. */
  private constant(t: OnnxTensor) {
    if (t.data.kind === 'external') this.info.externalTensors.push(t);
  }

  private func(m: ProtoField) {
    for (const f of readFields(this.buf, m.start, m.end)) {
      if (f.field === 7) this.node(this.bytes(f, 'function node'), 'function', 1);
    }
  }

  private trainingInfo(m: ProtoField) {
    for (const f of readFields(this.buf, m.start, m.end)) {
      if (f.field === 1 || f.field === 2) this.graph(this.bytes(f, 'training graph'), 'training', 1, false);
    }
  }

  private tensor(m: ProtoField, scope: string): OnnxTensor {
    const t: OnnxTensor = { name: '', dims: [], dataType: 0, data: { kind: 'other' }, scope };
    let raw: ProtoField | undefined;
    const floats: ProtoField[] = [];
    let external = false;
    const entries: [string, string][] = [];
    for (const f of readFields(this.buf, m.start, m.end)) {
      switch (f.field) {
        case 1:
          for (const d of readVarints(this.buf, f)) t.dims.push(Number(BigInt.asIntN(64, d)));
          break;
        case 2:
          t.dataType = Number(this.varint(f, 'data_type'));
          break;
        case 4:
          floats.push(f);
          break;
        case 8:
          t.name = utf8(this.buf, this.bytes(f, 'tensor name'));
          break;
        case 9:
          raw = this.bytes(f, 'raw_data');
          break;
        case 13:
          entries.push(this.entry(this.bytes(f, 'external_data')));
          break;
        case 14:
          external = this.varint(f, 'data_location') === 1n;
          break;
      }
    }
    // ONNX Runtime reads external data by data_location; any location entry is checked anyway,
    // so a file cannot smuggle a path past the checks by leaving data_location unset.
    const location = entries.findLast(([k]) => k === 'location')?.[1];
    if (external || location !== undefined) {
      const number = (key: string) => {
        const v = entries.findLast(([k]) => k === key)?.[1];
        if (v === undefined) return null;
        if (!/^\d{1,15}$/.test(v)) throw refuse(`tensor ${quoteName(t.name)} has external-data ${key} ${quoteName(v)}, which is not a byte count`);
        return Number(v);
      };
      if (location === undefined) throw refuse(`tensor ${quoteName(t.name)} is stored externally but names no location`);
      t.data = { kind: 'external', location, offset: number('offset') ?? 0, length: number('length') };
      this.info.externalTensors.push(t);
    } else if (raw) {
      t.data = { kind: 'raw', start: raw.start, end: raw.end };
    } else if (floats.length === 1 && floats[0]!.wire === Wire.Bytes) {
      t.data = { kind: 'float_data', start: floats[0]!.start, end: floats[0]!.end };
    }
    return t;
  }

  private entry(m: ProtoField): [string, string] {
    let key = '';
    let value = '';
    for (const f of readFields(this.buf, m.start, m.end)) {
      if (f.field === 1) key = utf8(this.buf, this.bytes(f, 'entry key'));
      else if (f.field === 2) value = utf8(this.buf, this.bytes(f, 'entry value'));
    }
    return [key, value];
  }

  private valueInfo(m: ProtoField): OnnxValueInfo {
    const v: OnnxValueInfo = { name: '', elemType: null, shape: null };
    for (const f of readFields(this.buf, m.start, m.end)) {
      if (f.field === 1) v.name = utf8(this.buf, this.bytes(f, 'value name'));
      else if (f.field === 2) {
        for (const tf of readFields(this.buf, f.start, this.bytes(f, 'type').end)) {
          if (tf.field !== 1) continue;
          for (const tt of readFields(this.buf, tf.start, this.bytes(tf, 'tensor_type').end)) {
            if (tt.field === 1) v.elemType = Number(this.varint(tt, 'elem_type'));
            else if (tt.field === 2) v.shape = this.shape(this.bytes(tt, 'shape'));
          }
        }
      }
    }
    return v;
  }

  private shape(m: ProtoField): (number | string | null)[] {
    const dims: (number | string | null)[] = [];
    for (const f of readFields(this.buf, m.start, m.end)) {
      if (f.field !== 1) continue;
      let dim: number | string | null = null;
      for (const d of readFields(this.buf, f.start, this.bytes(f, 'dim').end)) {
        if (d.field === 1) dim = Number(BigInt.asIntN(64, this.varint(d, 'dim_value')));
        else if (d.field === 2) dim = utf8(this.buf, this.bytes(d, 'dim_param'));
      }
      dims.push(dim);
    }
    return dims;
  }
}
