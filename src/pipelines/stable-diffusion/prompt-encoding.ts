import type * as ort from 'onnxruntime-node';
import { runBatched } from '../onnx/batched-run.js';
import { CLIP_MAX_LENGTH, type ClipTokenizer } from '../clip-tokenizer.js';
import type { StableDiffusionSessions } from './sessions.js';
import { floatValues, tensorFor } from '../onnx/tensor-io.js';

/**
 * The text encoder's hidden states for some prompts, [rows, 77, width]. When the encoder ran
 * once over all of them, its output tensor is kept as it came (on the GPU, with WebGPU), so the
 * UNet can take it as is; its values are read to the CPU only when they must be rearranged.
 */
export interface EncodedPrompts {
  rows: number;
  /** Tokens per prompt (77 for CLIP; precomputed embeddings may have another length). */
  sequenceLength: number;
  tensor: ort.Tensor | null;
  values(): Promise<Float32Array>;
  dispose(): void;
}

export async function encodePrompts(sessions: StableDiffusionSessions, tokenizer: ClipTokenizer, prompts: string[]): Promise<EncodedPrompts> {
  const ids = new Int32Array(prompts.length * CLIP_MAX_LENGTH);
  prompts.forEach((p, i) => ids.set(tokenizer.encode(p), i * CLIP_MAX_LENGTH));
  const feeds = (start: number, count: number) => ({
    [sessions.io.inputIds.name]: tensorFor(sessions.io.inputIds, ids.subarray(start * CLIP_MAX_LENGTH, (start + count) * CLIP_MAX_LENGTH), [count, CLIP_MAX_LENGTH]),
  });
  const batch = sessions.batch.textEncoder;
  if (batch !== null && batch !== prompts.length) {
    const values = await runBatched(sessions.textEncoder, prompts.length, batch, feeds, sessions.io.hiddenStates);
    return { rows: prompts.length, sequenceLength: CLIP_MAX_LENGTH, tensor: null, values: async () => values, dispose() {} };
  }
  const out = await sessions.textEncoder.run(feeds(0, prompts.length));
  for (const [name, t] of Object.entries(out)) if (name !== sessions.io.hiddenStates) t.dispose();
  const tensor = out[sessions.io.hiddenStates]!;
  let cached: Promise<Float32Array> | undefined;
  return {
    rows: prompts.length,
    sequenceLength: CLIP_MAX_LENGTH,
    tensor,
    values: () => (cached ??= floatValues(tensor)),
    dispose: () => tensor.dispose(),
  };
}

