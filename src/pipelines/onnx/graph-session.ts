import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { LoadOptions } from '../pipeline.js';

/**
 * Creates the session for the graph `file` of the model in `dir`: from the file itself, so that
 * onnxruntime finds external weight files beside it, or from the patched bytes when
 * `options.graphPatches` rewrites that file (a LoRA), told where the patch's external data
 * lies, since a graph created from bytes would otherwise resolve it against the working
 * directory.
 */
export async function createGraphSession(dir: string, file: string, options: LoadOptions, sessionOptions: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  const rel = path.posix.normalize(file);
  const patch = options.graphPatches?.find((p) => p.file === rel);
  if (!patch) return ort.InferenceSession.create(path.join(dir, rel), sessionOptions);
  const patched = await patch.open(path.join(dir, rel));
  try {
    const extra = (sessionOptions.extra ?? {}) as Record<string, Record<string, string>>;
    return await ort.InferenceSession.create(patched.bytes, {
      ...sessionOptions,
      extra: { ...extra, session: { ...extra.session, model_external_initializers_file_folder_path: patched.externalDataFolder } },
    });
  } finally {
    await patched.dispose();
  }
}
