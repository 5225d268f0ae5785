import crypto from 'node:crypto';
import { z } from 'zod';
import type { Generation } from '../db/entities/generation.js';
import type { Model } from '../db/entities/model.js';
import { SCHEDULER_NAMES } from '../pipelines/stable-diffusion/schedulers/scheduler-config.js';

const dimension = z
  .number()
  .int()
  .min(64, 'must be at least 64')
  .max(2048, 'must be at most 2048')
  .refine((v) => v % 8 === 0, 'must be a multiple of 8');

/** The contract's input limits for GenerateInput. */
export const generateInputSchema = z.object({
  prompt: z.string().trim().min(1, 'must not be empty').max(500, 'must be at most 500 characters'),
  negativePrompt: z.string().trim().max(500, 'must be at most 500 characters').nullish(),
  modelId: z.uuid('must be a model id').nullish(),
  loraId: z.uuid('must be a model id').nullish(),
  loraWeight: z.number().min(0, 'must be between 0 and 2').max(2, 'must be between 0 and 2').nullish(),
  numImages: z.number().int().min(1, 'must be between 1 and 4').max(4, 'must be between 1 and 4').nullish(),
  steps: z.number().int().min(1, 'must be between 1 and 150').max(150, 'must be between 1 and 150').nullish(),
  guidanceScale: z.number().min(0, 'must be between 0 and 30').max(30, 'must be between 0 and 30').nullish(),
  width: dimension.nullish(),
  height: dimension.nullish(),
  seed: z.number().int('must be a whole number').min(0, 'must be between 0 and 4294967295').max(4294967295, 'must be between 0 and 4294967295').nullish(),
  priority: z.number().int().min(-100, 'must be between -100 and 100').max(100, 'must be between -100 and 100').nullish(),
  deadlineSeconds: z.number().int().min(1, 'must be at least 1').max(30 * 24 * 3600, 'must be at most 30 days').nullish(),
  previews: z.boolean().nullish(),
  scheduler: z.enum(SCHEDULER_NAMES).nullish(),
});
export type ValidGenerateInput = z.output<typeof generateInputSchema>;

/** What a generation will run with: the input, completed from the model's defaults. */
export type GenerationParams = Pick<
  Generation,
  | 'prompt'
  | 'negativePrompt'
  | 'modelId'
  | 'loraId'
  | 'loraWeight'
  | 'numImages'
  | 'steps'
  | 'guidanceScale'
  | 'width'
  | 'height'
  | 'seed'
  | 'priority'
  | 'previews'
  | 'scheduler'
> & { deadlineSeconds: number | null };

export function resolveParams(input: ValidGenerateInput, model: Model): GenerationParams {
  const d = model.defaults;
  const num = (key: string, fallback: number) => (typeof d[key] === 'number' ? (d[key] as number) : fallback);
  return {
    prompt: input.prompt,
    negativePrompt: input.negativePrompt || null,
    modelId: model.id,
    loraId: input.loraId ?? null,
    loraWeight: input.loraId ? (input.loraWeight ?? 1) : null,
    numImages: input.numImages ?? 1,
    steps: input.steps ?? num('steps', 20),
    guidanceScale: input.guidanceScale ?? num('guidanceScale', 7.5),
    width: input.width ?? num('width', 512),
    height: input.height ?? num('height', 512),
    seed: input.seed ?? crypto.randomInt(0, 2 ** 32),
    priority: input.priority ?? 0,
    deadlineSeconds: input.deadlineSeconds ?? null,
    previews: input.previews ?? true,
    scheduler: input.scheduler ?? null,
  };
}
