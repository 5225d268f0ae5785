import type { ImageCapabilities, Scheduler } from '../api/operations';

export interface Range {
  min: number;
  max: number;
  /** `any`: the API takes any number in the range. */
  step: number | 'any';
}

/** A range the model declares: what a field left empty gets. */
export interface ModelRange extends Range {
  default: number;
}

/**
 * GenerateInput's own limits (schema.graphql), the same for every model: what the models'
 * capabilities do not declare.
 */
export const CONTRACT = {
  prompt: { maxLength: 500 },
  loraWeight: { min: 0, max: 2, step: 0.05 },
  seed: { min: 0, max: 4294967295, step: 1 },
  priority: { min: -100, max: 100, step: 1 },
  deadlineSeconds: { min: 1, max: 30 * 24 * 3600, step: 1 },
  /** SDXL's originalSize and targetSize sides, and its crop's top and left. */
  conditioningSize: { min: 1, max: 8192, step: 1 },
  cropCoordinate: { min: 0, max: 4096, step: 1 },
} as const;

/** What the Generate form offers for a model, from its declared capabilities. */
export interface FormCapabilities {
  steps: ModelRange;
  guidanceScale: ModelRange;
  width: ModelRange;
  height: ModelRange;
  numImages: Range;
  /** The values GenerateInput.scheduler takes (upper case); empty: the model has its own sampler. */
  schedulers: Scheduler[];
  defaultScheduler: string | null;
  negativePrompt: boolean;
  sizeConditioning: boolean;
  lora: boolean;
}

/** A side's range stepping by its multiple: the browser counts steps from `min`, so min and max are multiples too. */
function side(r: ImageCapabilities['width']): ModelRange {
  const m = r.multipleOf;
  return { min: Math.ceil(r.min / m) * m, max: Math.floor(r.max / m) * m, step: m, default: r.default };
}

export function formCapabilitiesOf(caps: ImageCapabilities): FormCapabilities {
  return {
    steps: { ...caps.steps, step: 1 },
    guidanceScale: { ...caps.guidanceScale, step: 'any' },
    width: side(caps.width),
    height: side(caps.height),
    numImages: { min: 1, max: caps.maxImages, step: 1 },
    schedulers: caps.schedulers.map((s) => s.toUpperCase() as Scheduler),
    defaultScheduler: caps.defaultScheduler,
    negativePrompt: caps.negativePrompt,
    sizeConditioning: caps.sizeConditioning,
    lora: caps.lora,
  };
}

/** A scheduler as a person reads it: EULER_ANCESTRAL → "euler ancestral". */
export const schedulerLabel = (s: string) => s.toLowerCase().replaceAll('_', ' ');
