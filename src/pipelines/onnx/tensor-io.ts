import * as ort from 'onnxruntime-node';
import { fromHalfArray, toHalfArray } from './float16.js';

/**
 * Tensors built in whatever element type a graph declares. Exports differ (Optimum's fp32,
 * ONNX Runtime's fp16 turbo graphs, int32 or int64 token ids, int64 or float timesteps), so
 * every input is made from the session's own metadata and every float output is read back as
 * float32, whatever it was.
 */

export interface Port {
  name: string;
  type: ort.Tensor.Type;
  /** Sizes, or the symbolic names of free dimensions. */
  shape: readonly (number | string)[];
}

/** The tensor inputs or outputs a session declares, by name. */
export function portsOf(metadata: readonly ort.InferenceSession.ValueMetadata[]): Map<string, Port> {
  const ports = new Map<string, Port>();
  for (const m of metadata) if (m.isTensor) ports.set(m.name, { name: m.name, type: m.type, shape: m.shape });
  return ports;
}

/** `values` as a tensor of the port's type; integer types take the nearest integer. */
export function tensorFor(port: Port, values: ArrayLike<number>, dims: readonly number[]): ort.Tensor {
  switch (port.type) {
    case 'float32':
      return new ort.Tensor('float32', values instanceof Float32Array ? values : Float32Array.from(values), dims);
    case 'float16':
      return new ort.Tensor('float16', toHalfArray(values), dims);
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(values), dims);
    case 'int64':
      return new ort.Tensor('int64', BigInt64Array.from(Array.from(values, (v) => BigInt(Math.round(v)))), dims);
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(values, (v) => Math.round(v)), dims);
    default:
      throw new Error(`input ${port.name} has type ${port.type}, which Kiln cannot feed`);
  }
}

/** A float tensor's values as float32, fetched from the device first if it lives there. */
export async function floatValues(tensor: ort.Tensor): Promise<Float32Array> {
  const data = tensor.location === 'cpu' ? tensor.data : await tensor.getData();
  if (data instanceof Float32Array) return data;
  if (tensor.type === 'float16' && data instanceof Uint16Array) return fromHalfArray(data);
  if (tensor.type === 'float16' || tensor.type === 'float64') return Float32Array.from(data as ArrayLike<number>);
  throw new Error(`output of type ${tensor.type} is not a float tensor`);
}
