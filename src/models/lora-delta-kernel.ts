import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder } from '../pipelines/onnx/graph-builder.js';

/**
 * W + A·B in W's own type (float32, or float16 through float32), computed by onnxruntime: its
 * matrix product runs on every core, where a JavaScript loop runs on one (a FLUX LoRA touches
 * some 11 billion weights). A is [rows, r] and B [r, cols] with r the adapter's rank summed over
 * what lands in this weight, so the product is cheap next to reading and writing W.
 */
export class LoraDeltaKernel {
  private sessions = new Map<'float32' | 'float16', Promise<ort.InferenceSession>>();

  /** W (rows × cols) plus A·B, as a new array of W's type. */
  async add(w: Float32Array | Uint16Array, rows: number, cols: number, a: Float32Array, b: Float32Array): Promise<Float32Array | Uint16Array> {
    const half = w instanceof Uint16Array;
    const type = half ? 'float16' : 'float32';
    const inner = a.length / rows;
    const session = await this.session(type);
    const out = await session.run({
      w: new ort.Tensor(type, w, [rows, cols]),
      a: new ort.Tensor('float32', a, [rows, inner]),
      b: new ort.Tensor('float32', b, [inner, cols]),
    });
    const data = out.merged!.data as Float32Array | Uint16Array;
    // Where the runtime has Float16Array, float16 results arrive as one: the same bits.
    return half && !(data instanceof Uint16Array) ? new Uint16Array(data.buffer, data.byteOffset, data.length) : data;
  }

  async release(): Promise<void> {
    const sessions = await Promise.all(this.sessions.values());
    this.sessions.clear();
    await Promise.all(sessions.map((s) => s.release()));
  }

  private session(type: 'float32' | 'float16'): Promise<ort.InferenceSession> {
    let session = this.sessions.get(type);
    if (!session) {
      session = ort.InferenceSession.create(kernelGraph(type === 'float16' ? DataType.FLOAT16 : DataType.FLOAT), {
        executionProviders: ['cpu'],
        intraOpNumThreads: os.availableParallelism(),
        interOpNumThreads: 1,
      });
      this.sessions.set(type, session);
    }
    return session;
  }
}

function kernelGraph(type: typeof DataType.FLOAT | typeof DataType.FLOAT16): Uint8Array {
  const g = new GraphBuilder('kiln-lora-delta');
  g.input('w', type, ['rows', 'cols']);
  g.input('a', DataType.FLOAT, ['rows', 'rank']);
  g.input('b', DataType.FLOAT, ['rank', 'cols']);
  const delta = g.op('MatMul', ['a', 'b']);
  if (type === DataType.FLOAT) g.op('Add', ['w', delta], {}, 'merged');
  else g.op('Cast', [g.op('Add', [g.op('Cast', ['w'], { to: DataType.FLOAT }), delta])], { to: DataType.FLOAT16 }, 'merged');
  g.output('merged', type, ['rows', 'cols']);
  return g.toBytes();
}
