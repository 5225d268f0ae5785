/**
 * What a LoRA merge should give, computed the textbook way and in PyTorch's layout, apart from
 * Kiln's merge: weights read from and written into an ONNX file's raw_data, transposes, and
 * weight · (alpha / rank) · up · down.
 */
import type { LoraModule } from '../../src/models/lora-adapter.js';
import { inspectOnnx, OnnxDataType } from '../../src/models/onnx-model.js';
import { floatToHalfBits, halfBitsToFloat } from '../../src/pipelines/onnx/float16.js';

function rawOf(bytes: Uint8Array, name: string) {
  const t = inspectOnnx(bytes).initializers.find((i) => i.name === name);
  if (!t || (t.data.kind !== 'raw' && t.data.kind !== 'float_data')) throw new Error(`${name} is not an inline weight of the graph`);
  return { t, start: t.data.start, end: t.data.end, half: t.dataType === OnnxDataType.FLOAT16 };
}

/** An inline initializer's values, as float32. */
export function weightValues(bytes: Uint8Array, name: string): Float32Array {
  const { start, end, half } = rawOf(bytes, name);
  const copy = bytes.slice(start, end);
  return half ? Float32Array.from(new Uint16Array(copy.buffer), halfBitsToFloat) : new Float32Array(copy.buffer);
}

/** A copy of the graph with an inline initializer's values replaced (same type, same length). */
export function withWeightValues(bytes: Uint8Array, name: string, values: Float32Array): Uint8Array {
  const { start, end, half } = rawOf(bytes, name);
  const out = bytes.slice();
  const encoded = half ? new Uint8Array(Uint16Array.from(values, floatToHalfBits).buffer) : new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (encoded.length !== end - start) throw new Error(`${name}: ${encoded.length} bytes for ${end - start}`);
  out.set(encoded, start);
  return out;
}

export function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j]!;
  return t;
}

/** weight · (alpha / rank) · up[rows] · down, [rows, in], for up rows [from, from + count) (all by default). */
export function loraDelta(m: LoraModule, weight: number, from = 0, count = m.up.shape[0]! - from): Float32Array {
  const inner = m.down.data.length / m.rank;
  const delta = new Float32Array(count * inner);
  for (let o = 0; o < count; o++) {
    for (let j = 0; j < inner; j++) {
      let sum = 0;
      for (let k = 0; k < m.rank; k++) sum += m.up.data[(from + o) * m.rank + k]! * m.down.data[k * inner + j]!;
      delta[o * inner + j] = (weight * m.alpha * sum) / m.rank;
    }
  }
  return delta;
}

export const added = (a: Float32Array, b: Float32Array) => a.map((v, i) => v + b[i]!);

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths ${a.length} and ${b.length}`);
  let most = 0;
  for (let i = 0; i < a.length; i++) most = Math.max(most, Math.abs(a[i]! - b[i]!));
  return most;
}

/** Where part of a module's update goes, written out by hand: `rows` up rows from `upFrom`, onto rows from `at` of the weight in PyTorch's layout [out, in]. */
export interface HandTarget {
  initializer: string;
  /** Stored [in, out] (MatMul), not [out, in]. */
  transposed: boolean;
  out: number;
  in: number;
  upFrom?: number;
  rows?: number;
  at?: number;
}

/** The graph with `module` merged into `targets` the plain way: to PyTorch's layout, add the delta, back. */
export function mergeByHand(bytes: Uint8Array, module: LoraModule, weight: number, targets: HandTarget[]): Uint8Array {
  let out = bytes;
  for (const t of targets) {
    const stored = weightValues(out, t.initializer);
    const w = t.transposed ? transpose(stored, t.in, t.out) : stored;
    const rows = t.rows ?? t.out;
    const delta = loraDelta(module, weight, t.upFrom ?? 0, rows);
    const at = t.at ?? 0;
    for (let i = 0; i < rows; i++) for (let j = 0; j < t.in; j++) w[(at + i) * t.in + j]! += delta[i * t.in + j]!;
    out = withWeightValues(out, t.initializer, t.transposed ? transpose(w, t.out, t.in) : w);
  }
  return out;
}
