import { toHalfArray } from './float16.js';
import { ProtoWriter } from './protobuf.js';

/** ONNX TensorProto.DataType values Kiln builds graphs with. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, BFLOAT16: 16, FLOAT8E4M3FN: 17, FLOAT4E2M1: 23 } as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

const AttributeType = { FLOAT: 1, INT: 2, INTS: 7 } as const;

type Dim = number | string;
type Attribute = number | number[];

interface Node {
  op: string;
  /** Operator set domain; '' is ONNX's own. */
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, Attribute>;
  name?: string;
  metadata?: Record<string, string>;
}

/** A node's own name (else `<op>_<index>`) and metadata_props, as exporters record module paths in them. */
export interface NodeDetails {
  name?: string;
  metadata?: Record<string, string>;
}

/** Where an external initializer's values lie: `length` bytes at `offset` of `location`, relative to the model's folder. */
interface ExternalData {
  location: string;
  offset: number;
  length: number;
}

interface Initializer {
  name: string;
  dims: number[];
  type: DataType;
  /** Float16 values are their bit patterns; raw bytes are what ONNX's raw_data holds. */
  data: Float32Array | Uint16Array | BigInt64Array | Uint8Array | ExternalData;
}

/**
 * Builds an ONNX model (opset 17) node by node. The output bytes depend only on what is added,
 * in the order it is added, so a graph built from fixed weights is the same file every time.
 */
export class GraphBuilder {
  private nodes: Node[] = [];
  private initializers: Initializer[] = [];
  private inputs: { name: string; type: DataType; shape: Dim[] }[] = [];
  private outputs: { name: string; type: DataType; shape: Dim[] }[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  input(name: string, type: DataType, shape: Dim[]): string {
    this.inputs.push({ name, type, shape });
    return name;
  }

  output(name: string, type: DataType, shape: Dim[]): void {
    this.outputs.push({ name, type, shape });
  }

  weight(name: string, dims: number[], data: Float32Array): string {
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`${name}: data does not match ${dims}`);
    this.initializers.push({ name, dims, type: DataType.FLOAT, data });
    return name;
  }

  /** A float16 weight: float32 values rounded to the nearest half, or the halves' bit patterns. */
  halfWeight(name: string, dims: number[], values: Float32Array | Uint16Array): string {
    if (values.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`${name}: data does not match ${dims}`);
    this.initializers.push({ name, dims, type: DataType.FLOAT16, data: values instanceof Float32Array ? toHalfArray(values) : values });
    return name;
  }

  /** A float32 (or float16) weight whose values lie in a file beside the model (ONNX external data), not in the graph. */
  externalWeight(name: string, dims: number[], location: string, offset = 0, type: typeof DataType.FLOAT | typeof DataType.FLOAT16 = DataType.FLOAT): string {
    const length = dims.reduce((a, b) => a * b, 1) * (type === DataType.FLOAT16 ? 2 : 4);
    this.initializers.push({ name, dims, type, data: { location, offset, length } });
    return name;
  }

  /** A weight of any element type, given as the little-endian bytes ONNX's raw_data holds. */
  rawWeight(name: string, dims: number[], type: DataType, bytes: Uint8Array): string {
    this.initializers.push({ name, dims, type, data: bytes });
    return name;
  }

  int64s(name: string, values: number[]): string {
    this.initializers.push({ name, dims: [values.length], type: DataType.INT64, data: BigInt64Array.from(values.map(BigInt)) });
    return name;
  }

  scalar(name: string, value: number): string {
    return this.weight(name, [], Float32Array.of(value));
  }

  /** Adds a node and returns its (first) output name; `out` names it, otherwise it is generated. */
  op(op: string, inputs: string[], attributes: Record<string, Attribute> = {}, out?: string, details: NodeDetails = {}): string {
    const output = out ?? `${op.toLowerCase()}_${this.counter++}`;
    this.nodes.push({ op, domain: '', inputs, outputs: [output], attributes, ...details });
    return output;
  }

  /** Adds a node of another operator set (a runtime's own operators), imported at version 1. */
  domainOp(domain: string, op: string, inputs: string[], out: string): string {
    this.nodes.push({ op, domain, inputs, outputs: [out], attributes: {} });
    return out;
  }

  toBytes(): Uint8Array {
    const w = new ProtoWriter();
    w.varint(1, 8); // ir_version 8 (ONNX 1.10+)
    w.string(2, 'kiln');
    w.message(7, (g) => this.writeGraph(g));
    w.message(8, (o) => o.string(1, '').varint(2, 17));
    for (const domain of new Set(this.nodes.map((n) => n.domain).filter(Boolean))) w.message(8, (o) => o.string(1, domain).varint(2, 1));
    return w.finish();
  }

  private writeGraph(g: ProtoWriter) {
    this.nodes.forEach((n, i) =>
      g.message(1, (m) => {
        n.inputs.forEach((x) => m.string(1, x));
        n.outputs.forEach((x) => m.string(2, x));
        m.string(3, n.name ?? `${n.op}_${i}`);
        m.string(4, n.op);
        if (n.domain) m.string(7, n.domain);
        for (const [name, value] of Object.entries(n.attributes)) {
          m.message(5, (a) => {
            a.string(1, name);
            if (Array.isArray(value)) a.packedVarints(8, value).varint(20, AttributeType.INTS);
            else if (Number.isInteger(value)) a.varint(3, value).varint(20, AttributeType.INT);
            else a.float(2, value).varint(20, AttributeType.FLOAT);
          });
        }
        for (const [key, value] of Object.entries(n.metadata ?? {})) m.message(9, (e) => e.string(1, key).string(2, value));
      }),
    );
    g.string(2, this.name);
    for (const t of this.initializers) {
      g.message(5, (m) => {
        if (t.dims.length) m.packedVarints(1, t.dims);
        m.varint(2, t.type);
        m.string(8, t.name);
        const data = t.data;
        if ('location' in data) {
          for (const [key, value] of Object.entries({ location: data.location, offset: String(data.offset), length: String(data.length) })) {
            m.message(13, (e) => e.string(1, key).string(2, value));
          }
          m.varint(14, 1); // data_location: EXTERNAL
        } else {
          m.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        }
      });
    }
    const valueInfo = (field: number, v: { name: string; type: DataType; shape: Dim[] }) =>
      g.message(field, (m) => {
        m.string(1, v.name);
        m.message(2, (type) =>
          type.message(1, (tensor) => {
            tensor.varint(1, v.type);
            tensor.message(2, (shape) => {
              for (const d of v.shape) shape.message(1, (dim) => (typeof d === 'number' ? dim.varint(1, d) : dim.string(2, d)));
            });
          }),
        );
      });
    this.inputs.forEach((v) => valueInfo(11, v));
    this.outputs.forEach((v) => valueInfo(12, v));
  }
}
