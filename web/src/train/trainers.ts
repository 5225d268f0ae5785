import type { Trainer } from '../api/training-operations';

interface TrainerFacts {
  value: Trainer;
  label: string;
  /** The base pipelines it trains LoRAs for. */
  pipelines: string[];
  defaults: { steps: number; rank: number; learningRate: number; resolution: number; batchSize: number };
  maxResolution: number;
  /** It loads weights of its own (`trainingWeights`), since ONNX exports hold none it can train. */
  external: boolean;
}

/**
 * The trainers as TrainLoraInput documents them (schema.graphql, README "Training LoRA
 * adapters"): what each trains and the defaults a field left empty gets. Kiln checks the input
 * against the same facts and names the field it refuses.
 */
export const TRAINERS: readonly TrainerFacts[] = [
  { value: 'BUILTIN', label: 'builtin (Kiln’s own, on the CPU)', pipelines: ['builtin'], defaults: { steps: 200, rank: 8, learningRate: 0.01, resolution: 32, batchSize: 4 }, maxResolution: 128, external: false },
  { value: 'AI_TOOLKIT', label: 'ai-toolkit (GPU host)', pipelines: ['stable-diffusion-onnx'], defaults: { steps: 1000, rank: 16, learningRate: 1e-4, resolution: 512, batchSize: 1 }, maxResolution: 2048, external: true },
  { value: 'SD_SCRIPTS', label: 'sd-scripts (GPU host)', pipelines: ['stable-diffusion-onnx'], defaults: { steps: 1000, rank: 16, learningRate: 1e-4, resolution: 512, batchSize: 1 }, maxResolution: 2048, external: true },
];

/** The trainer Kiln picks for a base pipeline when none is named: the first that trains it. */
export const defaultTrainerFor = (pipeline: string | undefined) => TRAINERS.find((t) => pipeline !== undefined && t.pipelines.includes(pipeline));

/** TrainLoraInput's own limits, the same for every trainer. */
export const TRAINING_CONTRACT = {
  name: { maxLength: 200 },
  triggerWord: { maxLength: 64 },
  steps: { min: 1, max: 100_000, step: 1 },
  rank: { min: 1, max: 256, step: 1 },
  alpha: { min: 0, max: 1024, step: 'any' },
  learningRate: { min: 0, max: 1, step: 'any' },
  resolution: { min: 8, max: 2048, step: 8 },
  batchSize: { min: 1, max: 64, step: 1 },
  every: { min: 0, max: 100_000, step: 1 },
} as const;
