import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { LoadOptions } from '../pipeline.js';
import { createSessionOptions } from './session-options.js';

/**
 * Opens the graph `rel` of the model in `dir`. By path, so that onnxruntime reads external
 * weight files beside the graph itself (mapping or streaming them) and the graph's bytes never
 * pass through JavaScript; a graph the load options patch (a LoRA merge) is read, rewritten and
 * opened from bytes, with onnxruntime told the graph's folder so that its external data still
 * resolves there (from bytes it would otherwise look in the working directory).
 */
export async function openGraphSession(dir: string, rel: string, options: LoadOptions, extra: ort.InferenceSession.SessionOptions = {}): Promise<ort.InferenceSession> {
  const file = path.join(dir, rel);
  const sessionOptions = { ...createSessionOptions(options), ...extra };
  if (options.graphPatch?.file !== rel) return ort.InferenceSession.create(file, sessionOptions);
  const patched = options.graphPatch.apply(new Uint8Array(await fs.readFile(file)));
  return ort.InferenceSession.create(patched, {
    ...sessionOptions,
    extra: {
      ...sessionOptions.extra,
      session: { ...(sessionOptions.extra?.session as object | undefined), model_external_initializers_file_folder_path: path.dirname(file) },
    },
  });
}
