import { SCHEDULER_NAMES } from '../stable-diffusion/schedulers/scheduler-config.js';

/**
 * What the stable-diffusion-xl-onnx pipeline accepts, for checks at submit time and for
 * clients building a form. A model's own defaults (steps, guidance, size, scheduler) and its
 * size multiple (8 × the UNet's downsampling: 32 for SDXL) come from inspecting its folder
 * (inspectStableDiffusionXLFolder); the ranges here hold for every SDXL model.
 */
export const STABLE_DIFFUSION_XL_PIPELINE = 'stable-diffusion-xl-onnx';

export const stableDiffusionXLDeclaration = {
  pipeline: STABLE_DIFFUSION_XL_PIPELINE,
  modality: 'image',
  schedulers: SCHEDULER_NAMES,
  /** Steps run: at most the scheduler's training timesteps (LCM: its original_inference_steps). */
  steps: { min: 1, max: 1000, default: 30 },
  /** Sides in pixels; each model may ask a larger multiple (its folder's `sizeMultiple`). */
  size: { min: 64, max: 2048, multiple: 8, default: 1024 },
  /** Classifier-free guidance; at or below 1 the negative half is not run. */
  guidanceScale: { min: 0, max: 30, default: 5 },
  negativePrompt: true,
  /** The micro-conditioning request fields, [height, width] or [top, left]. */
  sizeConditioning: ['originalSize', 'cropsCoordsTopLeft', 'targetSize'],
  /** Precomputed prompt embeddings ([1, L, D] and pooled [1, P]) instead of prompts. */
  promptEmbeddings: true,
  lora: { supported: true, target: 'unet/model.onnx' },
} as const;
