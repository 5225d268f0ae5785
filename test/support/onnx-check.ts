/**
 * The inputs the reference fixtures' `onnx_check/manifest.json` records for a graph (raw
 * little-endian float32 files with their shapes), as onnxruntime feeds.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

interface Entry {
  file: string;
  shape: number[];
}

export async function onnxCheckFeeds(modelDir: string, graph: string, index: number): Promise<Record<string, ort.Tensor>> {
  const dir = path.join(modelDir, 'onnx_check');
  const manifest = JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, { inputs: Record<string, Entry> }[]>;
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, entry] of Object.entries(manifest[graph]![index]!.inputs)) {
    const bytes = await fs.readFile(path.join(dir, entry.file));
    feeds[name] = new ort.Tensor('float32', new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice(), entry.shape);
  }
  return feeds;
}

/** The first output of `bytes` on `feeds`. */
export async function runGraph(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run(feeds);
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}
