import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder } from './graph-builder.js';

export interface ProviderCheck {
  /** The requested providers that work here, in order; `cpu` when none does. */
  usable: string[];
  refused: { name: string; reason: string }[];
}

/**
 * Tries each requested execution provider on a one-node graph. onnxruntime throws for one that
 * cannot start (no WebGPU adapter, no CUDA libraries), which is better learnt at start than at
 * the first job.
 */
export async function checkProviders(requested: string[]): Promise<ProviderCheck> {
  const g = new GraphBuilder('kiln-provider-check');
  g.input('x', DataType.FLOAT, [1]);
  g.op('Add', ['x', 'x'], {}, 'y');
  g.output('y', DataType.FLOAT, [1]);
  const graph = g.toBytes();
  const usable: string[] = [];
  const refused: ProviderCheck['refused'] = [];
  for (const name of requested) {
    try {
      const session = await ort.InferenceSession.create(graph, { executionProviders: [name] });
      await session.run({ x: new ort.Tensor('float32', Float32Array.of(1), [1]) });
      await session.release();
      usable.push(name);
    } catch (err) {
      refused.push({ name, reason: (err as Error).message.split('\n')[0]!.slice(0, 300) });
    }
  }
  return { usable: usable.length ? usable : ['cpu'], refused };
}
