import type { FluxFolder } from './model-folder.js';
import { FLOW_MATCH_EULER } from './schedule.js';

/**
 * What the `flux-onnx` pipeline accepts, for checks at submit time and for clients building a
 * form: ranges for any FLUX.1 model, and each model's own defaults (`fluxModelCapabilities`).
 * Imports nothing that loads onnxruntime, so the API can read it.
 * The pipeline itself refuses only what it cannot do (sides not multiples of 16, steps below 1):
 * the ranges here are the service's policy.
 */
export const FLUX_PIPELINE = 'flux-onnx';

export interface Range {
  min: number;
  max: number;
}

export interface FluxCapabilities {
  pipeline: typeof FLUX_PIPELINE;
  modality: 'image';
  /** The one sampler, diffusers' FlowMatchEulerDiscreteScheduler; there is no choice to make. */
  schedulers: readonly [typeof FLOW_MATCH_EULER];
  steps: Range & { default: number };
  width: Range & { multipleOf: number; default: number };
  height: Range & { multipleOf: number; default: number };
  /** dev's distilled guidance scale (no second batch half); null for schnell, which takes none. */
  guidance: (Range & { default: number }) | null;
  /** FLUX.1 runs no classifier-free guidance, so a negative prompt changes nothing. */
  negativePrompt: false;
  /** Whether the model encodes text prompts itself; without text encoders it takes embeddings only. */
  textPrompts: boolean;
  /** Precomputed prompt_embeds / pooled_prompt_embeds instead of a prompt. */
  promptEmbeddings: true;
  /** LoRA adapters merge into this graph (relative to the model folder). */
  lora: { target: string };
}

export const FLUX_STEPS: Range = { min: 1, max: 100 };
export const FLUX_SIDE: Range & { multipleOf: number } = { min: 64, max: 2048, multipleOf: 16 };
export const FLUX_GUIDANCE: Range = { min: 0, max: 20 };
/** Where Optimum's layout keeps the transformer, the graph LoRA adapters patch. */
export const FLUX_LORA_TARGET = 'transformer/model.onnx';

/** The declaration for one inspected model: the ranges above with its own defaults and LoRA target. */
export function fluxModelCapabilities(folder: FluxFolder): FluxCapabilities {
  const d = folder.defaults;
  return {
    pipeline: FLUX_PIPELINE,
    modality: 'image',
    schedulers: [FLOW_MATCH_EULER],
    steps: { ...FLUX_STEPS, default: d.steps },
    width: { ...FLUX_SIDE, default: d.width },
    height: { ...FLUX_SIDE, default: d.height },
    guidance: folder.variant === 'dev' ? { ...FLUX_GUIDANCE, default: d.guidanceScale } : null,
    negativePrompt: false,
    textPrompts: folder.tokenizers !== null,
    promptEmbeddings: true,
    lora: { target: folder.graphs.transformer },
  };
}
