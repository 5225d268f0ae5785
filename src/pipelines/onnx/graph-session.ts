import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { LoadOptions } from '../pipeline.js';

/**
 * Opens one graph of a model folder. By path when nothing changes it, so that onnxruntime reads
 * external weight files beside it (mapping or streaming them) and the graph's bytes never pass
 * through JavaScript. Otherwise from bytes: the load options' patch for this file (a LoRA merge,
 * with its own external data), then `rewrite` (e.g. an fp16 graph upcast to fp32; it returns null
 * when it leaves the bytes as they are). A graph made from bytes is told where its external data
 * lies, since onnxruntime would otherwise look for it in the working directory.
 */
export async function openGraph(
  dir: string,
  rel: string,
  options: LoadOptions,
  sessionOptions: ort.InferenceSession.SessionOptions,
  rewrite?: (bytes: Uint8Array) => Uint8Array | null,
): Promise<ort.InferenceSession> {
  const file = path.join(dir, path.posix.normalize(rel));
  const patch = options.graphPatches?.find((p) => p.file === path.posix.normalize(rel));
  if (!patch && !rewrite) return ort.InferenceSession.create(file, sessionOptions);
  const patched = patch ? await patch.open(file) : { bytes: new Uint8Array(await fs.readFile(file)), externalDataFolder: path.dirname(file), dispose: async () => undefined };
  try {
    const bytes = rewrite?.(patched.bytes) ?? (patch ? patched.bytes : null);
    if (!bytes) return await ort.InferenceSession.create(file, sessionOptions);
    const extra = (sessionOptions.extra ?? {}) as Record<string, Record<string, string>>;
    return await ort.InferenceSession.create(bytes, {
      ...sessionOptions,
      extra: { ...extra, session: { ...extra.session, model_external_initializers_file_folder_path: patched.externalDataFolder } },
    });
  } finally {
    await patched.dispose();
  }
}
