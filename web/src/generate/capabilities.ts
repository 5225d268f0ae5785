import type { Model, Scheduler } from '../api/operations';

export interface Range {
  min: number;
  max: number;
  step: number;
}

/** What a model accepts, as the Generate form offers it. */
export interface Capabilities {
  prompt: { maxLength: number };
  steps: Range;
  guidanceScale: Range;
  /** Width and height. */
  size: Range;
  numImages: Range;
  loraWeight: Range;
  seed: Range;
  priority: Range;
  /** Empty: the model takes no scheduler choice. */
  schedulers: Scheduler[];
  loras: boolean;
}

/** GenerateInput's ranges from the contract, the same for every model. */
const CONTRACT: Omit<Capabilities, 'schedulers' | 'loras'> = {
  prompt: { maxLength: 500 },
  steps: { min: 1, max: 150, step: 1 },
  guidanceScale: { min: 0, max: 30, step: 0.5 },
  size: { min: 64, max: 2048, step: 8 },
  numImages: { min: 1, max: 4, step: 1 },
  loraWeight: { min: 0, max: 2, step: 0.05 },
  seed: { min: 0, max: 4294967295, step: 1 },
  priority: { min: -100, max: 100, step: 1 },
};

const SD_SCHEDULERS: Scheduler[] = ['EULER', 'EULER_ANCESTRAL', 'DDIM', 'PNDM', 'LCM'];

/**
 * What the form offers for a model. The API does not declare a model's capabilities yet, so
 * this reads them off its pipeline: the contract's ranges, schedulers for Stable Diffusion, and
 * LoRA adapters for both of today's pipelines (each registers a LoRA target).
 */
export function capabilitiesOf(model: Pick<Model, 'pipeline'> | undefined): Capabilities {
  return {
    ...CONTRACT,
    schedulers: model?.pipeline === 'stable-diffusion-onnx' ? SD_SCHEDULERS : [],
    loras: model?.pipeline === 'builtin' || model?.pipeline === 'stable-diffusion-onnx',
  };
}

export const MAX_SEED = CONTRACT.seed.max;
