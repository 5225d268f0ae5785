import { KilnError } from '../../errors.js';
import type { Float32Tensor, GenerateRequest } from '../pipeline.js';
import { runBatchedOutputs } from '../onnx/batched-run.js';
import { CLIP_MAX_LENGTH, type ClipTokenizer } from '../clip-tokenizer.js';
import type { EncodedPrompts } from '../stable-diffusion/prompt-encoding.js';
import { tensorFor } from '../onnx/tensor-io.js';
import type { StableDiffusionXLFolder } from './model-folder.js';
import type { StableDiffusionXLSessions, TextEncoderGraph } from './sessions.js';

/**
 * SDXL's text conditioning, as diffusers' StableDiffusionXLPipeline.encode_prompt makes it:
 * each prompt through both tokenizers and text encoders, the penultimate layer's hidden states
 * of the two concatenated on the feature axis ([rows, 77, D₁ + D₂]), and the second encoder's
 * pooled `text_embeds` ([rows, P]). Under classifier-free guidance the rows are
 * [negative, prompt]; no negative prompt gives zeros for both where the model says
 * `force_zeros_for_empty_prompt` (diffusers' `negative_prompt=None`), the encoded "" otherwise.
 * Embeddings a request carries replace the encoding of their prompt.
 */
export interface SdxlConditioning {
  prompts: EncodedPrompts;
  /** [rows, pooledWidth] */
  pooled: Float32Array;
  pooledWidth: number;
}

export type Tokenizers = [ClipTokenizer, ClipTokenizer];

const refuse = (message: string) => new KilnError('BAD_USER_INPUT', message);

interface Rows {
  hidden: Float32Array;
  sequenceLength: number;
  width: number;
  pooled: Float32Array;
  pooledWidth: number;
}

/** The conditioning for one generation: [negative, prompt] rows when `withNegative`, [prompt] otherwise. */
export async function promptConditioning(
  folder: StableDiffusionXLFolder,
  sessions: StableDiffusionXLSessions,
  tokenizers: Tokenizers | null,
  req: GenerateRequest,
  withNegative: boolean,
): Promise<SdxlConditioning> {
  const given = req.embeddings;
  const zeroNegative = withNegative && !given?.negative && req.negativePrompt == null && folder.forceZerosForEmptyPrompt;
  const texts = [...(withNegative && !given?.negative && !zeroNegative ? [req.negativePrompt ?? ''] : []), ...(given ? [] : [req.prompt])];
  let encoded: Rows | null = null;
  if (texts.length) {
    if (!sessions.textEncoders || !tokenizers) {
      throw refuse(
        given
          ? "this model has no text encoders, so a negative prompt must come as embeddings (give negative prompt embeddings with the prompt's, or no negative prompt)"
          : 'this model has no text encoders: its prompts must come as embeddings',
      );
    }
    encoded = await encodeTexts(sessions.textEncoders, tokenizers, texts);
  }
  const take = (i: number): Rows => rowOf(encoded!, i);
  const positive = given ? givenRows(given.prompt, given.pooled, 'prompt') : take(texts.length - 1);
  const rows = [positive];
  if (withNegative) {
    if (given?.negative) rows.unshift(givenRows(given.negative, given.negativePooled, 'negative prompt'));
    else if (zeroNegative) rows.unshift({ ...positive, hidden: new Float32Array(positive.hidden.length), pooled: new Float32Array(positive.pooled.length) });
    else rows.unshift(take(0));
    const [negative] = rows;
    if (negative!.sequenceLength !== positive.sequenceLength || negative!.width !== positive.width || negative!.pooledWidth !== positive.pooledWidth) {
      throw refuse(
        `negative prompt embeddings must have the prompt's shape ([1, ${positive.sequenceLength}, ${positive.width}] and [1, ${positive.pooledWidth}]), not [1, ${negative!.sequenceLength}, ${negative!.width}] and [1, ${negative!.pooledWidth}]`,
      );
    }
  }
  checkWidths(folder, sessions, positive);
  const hidden = concatRows(rows.map((r) => r.hidden));
  return {
    prompts: { rows: rows.length, sequenceLength: positive.sequenceLength, tensor: null, values: async () => hidden, dispose() {} },
    pooled: concatRows(rows.map((r) => r.pooled)),
    pooledWidth: positive.pooledWidth,
  };
}

/** Both encoders over all texts in one batch each: penultimate hidden states side by side, and the second's pooled output. */
async function encodeTexts(encoders: [TextEncoderGraph, TextEncoderGraph], tokenizers: Tokenizers, texts: string[]): Promise<Rows> {
  const [first, second] = await Promise.all(
    encoders.map(async (encoder, e) => {
      const ids = new Int32Array(texts.length * CLIP_MAX_LENGTH);
      texts.forEach((t, i) => ids.set(tokenizers[e]!.encode(t), i * CLIP_MAX_LENGTH));
      const feeds = (start: number, count: number) => ({
        [encoder.inputIds.name]: tensorFor(encoder.inputIds, ids.subarray(start * CLIP_MAX_LENGTH, (start + count) * CLIP_MAX_LENGTH), [count, CLIP_MAX_LENGTH]),
      });
      const outputs = [encoder.hiddenStates, ...(encoder.pooled ? [encoder.pooled] : [])];
      return runBatchedOutputs(encoder.session, texts.length, encoder.batch, feeds, outputs);
    }),
  );
  const [hidden1, hidden2, pooled] = [first![0]!, second![0]!, second![1]!];
  const tokens = texts.length * CLIP_MAX_LENGTH;
  const [w1, w2] = [hidden1.length / tokens, hidden2.length / tokens];
  const hidden = new Float32Array(tokens * (w1 + w2));
  for (let t = 0; t < tokens; t++) {
    hidden.set(hidden1.subarray(t * w1, (t + 1) * w1), t * (w1 + w2));
    hidden.set(hidden2.subarray(t * w2, (t + 1) * w2), t * (w1 + w2) + w1);
  }
  return { hidden, sequenceLength: CLIP_MAX_LENGTH, width: w1 + w2, pooled, pooledWidth: pooled.length / texts.length };
}

function rowOf(rows: Rows, i: number): Rows {
  const hiddenRow = rows.sequenceLength * rows.width;
  return {
    ...rows,
    hidden: rows.hidden.subarray(i * hiddenRow, (i + 1) * hiddenRow),
    pooled: rows.pooled.subarray(i * rows.pooledWidth, (i + 1) * rows.pooledWidth),
  };
}

/** Embeddings in diffusers' shapes: prompt_embeds [1, L, D] and pooled_prompt_embeds [1, P]. */
function givenRows(embeds: Float32Tensor, pooled: Float32Tensor | undefined, what: string): Rows {
  const dims = embeds.dims;
  if (dims.length !== 3 || dims[0] !== 1 || dims.some((d) => !Number.isInteger(d) || d < 1) || embeds.data.length !== dims[0] * dims[1]! * dims[2]!) {
    throw refuse(`${what} embeddings must be one [1, L, D] tensor holding L·D values (dims ${JSON.stringify(dims)}, ${embeds.data.length} values given)`);
  }
  if (!pooled) throw refuse(`${what} embeddings need their pooled embedding [1, P] too (SDXL conditions on both)`);
  if (pooled.dims.length !== 2 || pooled.dims[0] !== 1 || pooled.data.length !== pooled.dims[1]) {
    throw refuse(`pooled ${what} embeddings must be one [1, P] tensor (dims ${JSON.stringify(pooled.dims)}, ${pooled.data.length} values given)`);
  }
  return { hidden: embeds.data, sequenceLength: dims[1]!, width: dims[2]!, pooled: pooled.data, pooledWidth: pooled.dims[1]! };
}

function checkWidths(folder: StableDiffusionXLFolder, sessions: StableDiffusionXLSessions, rows: Rows) {
  const fixed = (d: number | string | undefined) => (typeof d === 'number' && d > 0 ? d : null);
  const width = fixed(sessions.io.encoderHiddenStates.shape[2]) ?? folder.unet.crossAttentionDim;
  const pooledWidth = fixed(sessions.io.textEmbeds.shape[1]) ?? folder.unet.pooledDim;
  if (width !== null && rows.width !== width) throw refuse(`this model's UNet takes prompt embeddings ${width} wide, not ${rows.width}`);
  if (pooledWidth !== null && rows.pooledWidth !== pooledWidth) throw refuse(`this model's UNet takes pooled prompt embeddings ${pooledWidth} wide, not ${rows.pooledWidth}`);
}

function concatRows(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
