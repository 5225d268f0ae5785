import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder } from '../pipelines/onnx/graph-builder.js';

const BAND_VALUES = 2 ** 20;

/**
 * W + A·B in W's own type (float32, or float16 through float32), computed by onnxruntime: its
 * matrix product runs on every core, where a JavaScript loop runs on one (a FLUX LoRA touches
 * some 11 billion weights). A is [rows, r] and B [r, cols] with r the adapter's rank summed over
 * what lands in this weight, so the product is cheap next to reading and writing W. W goes
 * through in bands of about a million values: the float32 intermediates then stay in the
 * processor's caches, which makes it several times faster than one run over a whole weight.
 */
export class LoraDeltaKernel {
  private sessions = new Map<'float32' | 'float16', Promise<ort.InferenceSession>>();

  /** Adds A·B to W (rows × cols), in place. */
  async add(w: Float32Array | Uint16Array, rows: number, cols: number, a: Float32Array, b: Float32Array): Promise<void> {
    const half = w instanceof Uint16Array;
    const type = half ? 'float16' : 'float32';
    const inner = a.length / rows;
    const session = await this.session(type);
    const band = Math.max(1, Math.floor(BAND_VALUES / cols));
    const bTensor = new ort.Tensor('float32', b, [inner, cols]);
    for (let r0 = 0; r0 < rows; r0 += band) {
      const n = Math.min(band, rows - r0);
      const out = await session.run({
        w: new ort.Tensor(type, w.subarray(r0 * cols, (r0 + n) * cols), [n, cols]),
        a: new ort.Tensor('float32', a.subarray(r0 * inner, (r0 + n) * inner), [n, inner]),
        b: bTensor,
      });
      const data = out.merged!.data as Float32Array | Uint16Array;
      // Where the runtime has Float16Array, float16 results arrive as one: the same bits.
      w.set(half && !(data instanceof Uint16Array) ? new Uint16Array(data.buffer, data.byteOffset, data.length) : data, r0 * cols);
    }
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
