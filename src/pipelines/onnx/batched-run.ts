import type * as ort from 'onnxruntime-node';
import { floatValues } from './tensor-io.js';

/**
 * Runs a graph over `total` batch items, in one run when its batch is free or in runs of its
 * fixed batch size, and returns the float output `output` of all items in order, as float32.
 */
export async function runBatched(
  session: ort.InferenceSession,
  total: number,
  batch: number | null,
  feeds: (start: number, count: number) => Record<string, ort.Tensor>,
  output: string,
): Promise<Float32Array> {
  return (await runBatchedOutputs(session, total, batch, feeds, [output]))[0]!;
}

/**
 * As runBatched, for several float outputs at once: one array per name in `outputs`. Only those
 * are fetched (SDXL's text encoders have an output per layer, and one or two are wanted).
 */
export async function runBatchedOutputs(
  session: ort.InferenceSession,
  total: number,
  batch: number | null,
  feeds: (start: number, count: number) => Record<string, ort.Tensor>,
  outputs: readonly string[],
): Promise<Float32Array[]> {
  const chunk = batch ?? total;
  if (total % chunk !== 0) throw new Error(`the graph takes batches of ${chunk}, which ${total} is not a multiple of`);
  const parts: Float32Array[][] = outputs.map(() => []);
  for (let start = 0; start < total; start += chunk) {
    const result = await session.run(feeds(start, chunk), outputs);
    for (const [i, name] of outputs.entries()) parts[i]!.push(await floatValues(result[name]!));
    for (const t of Object.values(result)) t.dispose();
  }
  return parts.map(concat);
}

function concat(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
