import type { AudioModelDeclaration } from './audio-pipeline.js';

/**
 * What a model's pipeline accepts, declared where the pipeline is registered (catalog.ts): the
 * API checks requests against it at submit time and shows it to clients, so that a form can be
 * built from it. Ranges are inclusive.
 */
export interface Range {
  min: number;
  max: number;
  default: number;
}

export interface SizeRange extends Range {
  /** Sizes must be a multiple of this. */
  multipleOf: number;
}

export interface ImageCapabilities {
  modality: 'image';
  /** Samplers it offers (empty: it has a fixed one of its own). */
  schedulers: string[];
  defaultScheduler: string | null;
  steps: Range;
  guidanceScale: Range;
  width: SizeRange;
  height: SizeRange;
  /** Most images in one generation. */
  maxImages: number;
  negativePrompt: boolean;
  /** SDXL's micro-conditioning: original size, crop top-left and target size. */
  sizeConditioning: boolean;
  lora: boolean;
}

export interface AudioCapabilities {
  modality: 'audio';
  durationSeconds: Range;
  guidanceScale: Range;
  topK: Range;
  temperature: Range;
  sampleRate: number;
  channels: number;
  lora: boolean;
}

export type Capabilities = ImageCapabilities | AudioCapabilities;
export type Modality = Capabilities['modality'];

/** What intake recorded about a model's folder: the defaults it declares (steps, size, …). */
export type ModelDefaults = Record<string, number | string>;

const num = (d: ModelDefaults, key: string, fallback: number) => (typeof d[key] === 'number' ? (d[key] as number) : fallback);
const str = (d: ModelDefaults, key: string) => (typeof d[key] === 'string' ? (d[key] as string) : null);

/** The contract's limits for image generation, narrowed by each pipeline and model. */
export function imageCapabilities(d: ModelDefaults, own: Partial<Omit<ImageCapabilities, 'modality'>> & { lora: boolean }): ImageCapabilities {
  const side = (key: 'width' | 'height'): SizeRange => ({ min: 64, max: 2048, multipleOf: 8, default: num(d, key, 512), ...own[key] });
  return {
    modality: 'image',
    schedulers: own.schedulers ?? [],
    defaultScheduler: own.defaultScheduler ?? str(d, 'scheduler'),
    steps: { min: 1, max: 150, default: num(d, 'steps', 20), ...own.steps },
    guidanceScale: { min: 0, max: 30, default: num(d, 'guidanceScale', 7.5), ...own.guidanceScale },
    width: side('width'),
    height: side('height'),
    maxImages: own.maxImages ?? 4,
    negativePrompt: own.negativePrompt ?? true,
    sizeConditioning: own.sizeConditioning ?? false,
    lora: own.lora,
  };
}

/**
 * An audio model's declaration as intake records it in the model's defaults (flat numbers), for
 * `audioCapabilities` and the estimate to read back without opening the folder.
 */
export function audioModelDefaults(d: AudioModelDeclaration): ModelDefaults {
  return {
    durationSeconds: d.durationSeconds.default,
    minDurationSeconds: d.durationSeconds.min,
    maxDurationSeconds: d.durationSeconds.max,
    guidanceScale: d.guidanceScale.default,
    topK: d.topK.default,
    maxTopK: d.topK.max,
    temperature: d.temperature.default,
    sampleRate: d.sampleRate,
    channels: d.channels,
    frameRate: d.frameRate,
    stepsPerFrame: d.stepsPerFrame,
    extraSteps: d.extraSteps,
  };
}

/** What an audio model accepts, from the defaults intake recorded (`audioModelDefaults`) over what its pipeline declares where they say nothing. */
export function audioCapabilities(d: ModelDefaults, fallback: AudioModelDeclaration): AudioCapabilities {
  const range = (min: string, max: string, value: string, own: Range): Range => ({ min: num(d, min, own.min), max: num(d, max, own.max), default: num(d, value, own.default) });
  return {
    modality: 'audio',
    durationSeconds: range('minDurationSeconds', 'maxDurationSeconds', 'durationSeconds', fallback.durationSeconds),
    guidanceScale: { ...fallback.guidanceScale, default: num(d, 'guidanceScale', fallback.guidanceScale.default) },
    topK: { min: 0, max: num(d, 'maxTopK', fallback.topK.max), default: num(d, 'topK', fallback.topK.default) },
    temperature: { ...fallback.temperature, default: num(d, 'temperature', fallback.temperature.default) },
    sampleRate: num(d, 'sampleRate', fallback.sampleRate),
    channels: num(d, 'channels', fallback.channels),
    lora: false,
  };
}

/** Decoder steps an audio model runs for `durationSeconds` of audio (what its speed is measured in). */
export function audioDecoderSteps(d: ModelDefaults, durationSeconds: number): number {
  return Math.round(durationSeconds * num(d, 'frameRate', 50)) * num(d, 'stepsPerFrame', 1) + num(d, 'extraSteps', 0);
}
