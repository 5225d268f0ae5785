import { KilnError } from '../../errors.js';
import type { PromptEmbeddings } from '../pipeline.js';
import { CLIP_MAX_LENGTH, type ClipTokenizer } from '../clip-tokenizer.js';
import { floatValues, tensorFor } from '../onnx/tensor-io.js';
import type { FluxFolder } from './model-folder.js';
import type { FluxSessions } from './sessions.js';
import type { T5Tokenizer } from './t5-tokenizer.js';

/**
 * One prompt's conditioning, as FluxPipeline.encode_prompt makes it: T5's hidden states
 * ([1, L, D], `prompt_embeds`) for the transformer's attention and CLIP's pooled output
 * ([1, P], `pooled_prompt_embeds`) for its modulation.
 */
export interface FluxConditioning {
  states: Float32Array;
  /** L: text tokens. */
  length: number;
  /** D: the width of each state. */
  width: number;
  pooled: Float32Array;
}

export interface FluxTokenizers {
  clip: ClipTokenizer;
  t5: T5Tokenizer;
}

export async function encodeFluxPrompt(sessions: FluxSessions, tokenizers: FluxTokenizers, prompt: string, maxSequenceLength: number): Promise<FluxConditioning> {
  const { clip, t5 } = sessions;
  if (!clip || !t5) throw new KilnError('BAD_USER_INPUT', 'this model has no text encoders: give the prompt as embeddings');
  const clipOut = await clip.session.run({ [clip.inputIds.name]: tensorFor(clip.inputIds, tokenizers.clip.encode(prompt), [1, CLIP_MAX_LENGTH]) });
  const t5Out = await t5.session.run({ [t5.inputIds.name]: tensorFor(t5.inputIds, tokenizers.t5.encode(prompt, maxSequenceLength), [1, maxSequenceLength]) });
  try {
    const pooled = await floatValues(clipOut[clip.pooled]!);
    const states = t5Out[t5.hiddenStates]!;
    const values = await floatValues(states);
    return { states: values, length: states.dims[1]!, width: states.dims[2]!, pooled };
  } finally {
    for (const t of [...Object.values(clipOut), ...Object.values(t5Out)]) t.dispose();
  }
}

/** The request's precomputed `prompt_embeds` and `pooled_prompt_embeds`, checked against the transformer. */
export function conditioningFromEmbeddings(embeddings: PromptEmbeddings, folder: FluxFolder): FluxConditioning {
  const refuse = (message: string) => new KilnError('BAD_USER_INPUT', message, { field: 'embeddings' });
  const { prompt, pooled } = embeddings;
  if (!pooled) throw refuse('FLUX needs pooled prompt embeddings (pooled_prompt_embeds) beside the prompt embeddings');
  const [batch, length, width] = prompt.dims;
  if (prompt.dims.length !== 3 || batch !== 1 || !length || !width || prompt.data.length !== length * width) {
    throw refuse(`prompt embeddings must be [1, L, D] with L·D values, not [${prompt.dims.join(', ')}] with ${prompt.data.length}`);
  }
  if (folder.jointAttentionDim !== null && width !== folder.jointAttentionDim) throw refuse(`prompt embeddings must be ${folder.jointAttentionDim} wide for this model, not ${width}`);
  if (pooled.dims.length !== 2 || pooled.dims[0] !== 1 || pooled.data.length !== pooled.dims[1]) {
    throw refuse(`pooled prompt embeddings must be [1, P] with P values, not [${pooled.dims.join(', ')}] with ${pooled.data.length}`);
  }
  if (folder.pooledProjectionDim !== null && pooled.dims[1] !== folder.pooledProjectionDim) {
    throw refuse(`pooled prompt embeddings must be ${folder.pooledProjectionDim} wide for this model, not ${pooled.dims[1]}`);
  }
  return { states: prompt.data, length, width, pooled: pooled.data };
}
