import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { LoadOptions } from '../pipeline.js';

/**
 * Opens one graph of a model folder: by path, so that onnxruntime finds external weight files
 * beside it, unless its bytes must change first: the load options' graph patch (a LoRA merge)
 * when it names this file, then `rewrite` (which returns null when it leaves the bytes as they
 * are). A graph made from bytes is looked up by onnxruntime in the working directory for its
 * external data, so patches refuse such graphs and rewrites read them in.
 */
export async function openGraph(
  dir: string,
  rel: string,
  options: LoadOptions,
  sessionOptions: ort.InferenceSession.SessionOptions,
  rewrite?: (bytes: Uint8Array) => Uint8Array | null,
): Promise<ort.InferenceSession> {
  const file = path.join(dir, rel);
  const patch = options.graphPatch?.file === rel ? options.graphPatch : null;
  if (!patch && !rewrite) return ort.InferenceSession.create(file, sessionOptions);
  let bytes: Uint8Array = new Uint8Array(await fs.readFile(file));
  if (patch) bytes = patch.apply(bytes);
  const rewritten = rewrite?.(bytes) ?? null;
  if (rewritten) return ort.InferenceSession.create(rewritten, sessionOptions);
  return patch ? ort.InferenceSession.create(bytes, sessionOptions) : ort.InferenceSession.create(file, sessionOptions);
}
