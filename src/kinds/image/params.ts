import { z } from 'zod';

const size = z
  .number()
  .int()
  .min(64, 'must be at least 64')
  .max(2048, 'must be at most 2048')
  .refine((v) => v % 8 === 0, 'must be a multiple of 8');

const sizePair = z.array(z.number().int().min(1, 'must be at least 1').max(8192, 'must be at most 8192')).length(2, 'must be [height, width]').nullable();

/**
 * An image generation's parameters as it runs with them: the one definition that the GraphQL
 * input (`GenerateInput`), its validation, the stored row, the runner's request and the PNG's
 * metadata follow. Only `prompt` is required of a client; the model fills the rest at submit.
 * These are the contract's outer limits; each model narrows them (see `Model.capabilities`).
 */
export const imageParams = z.object({
  prompt: z.string().trim().min(1, 'must not be empty').max(500, 'must be at most 500 characters').describe('1..500 characters after trimming'),
  negativePrompt: z.string().trim().max(500, 'must be at most 500 characters').nullable().describe('at most 500 characters'),
  modelId: z.uuid('must be a model id').meta({ graphql: 'ID', description: 'default: the default base model' }),
  loraId: z.uuid('must be a model id').nullable().meta({ graphql: 'ID', description: 'a LoRA adapter of the model' }),
  loraWeight: z.number().min(0, 'must be between 0 and 2').max(2, 'must be between 0 and 2').nullable().describe('0..2, default 1 (0.8 is common)'),
  numImages: z.number().int().min(1, 'must be between 1 and 4').max(4, 'must be between 1 and 4').describe('1..4, default 1'),
  steps: z.number().int().min(1, 'must be between 1 and 150').max(150, 'must be between 1 and 150').describe('1..150, default depends on the model'),
  guidanceScale: z.number().min(0, 'must be between 0 and 30').max(30, 'must be between 0 and 30').describe('0..30, default depends on the model'),
  width: size.describe('64..2048, multiple of 8'),
  height: size.describe('64..2048, multiple of 8'),
  seed: z
    .number()
    .int('must be a whole number')
    .min(0, 'must be between 0 and 4294967295')
    .max(4294967295, 'must be between 0 and 4294967295')
    .meta({ graphql: 'Float', description: '0..4294967295; random when omitted, always recorded' }),
  previews: z.boolean().describe('GENERATING events carry a small preview image (default true)'),
  scheduler: z.string().nullable().meta({ graphql: 'Scheduler', description: "the sampler, for models that offer several (default: the model's own)" }),
  originalSize: sizePair.describe('SDXL: the original size [height, width] it conditions on (default: the image size)'),
  cropsCoordsTopLeft: z
    .array(z.number().int().min(0, 'must be at least 0').max(4096, 'must be at most 4096'))
    .length(2, 'must be [top, left]')
    .nullable()
    .describe('SDXL: the crop top-left [top, left] it conditions on (default: [0, 0])'),
  targetSize: sizePair.describe('SDXL: the target size [height, width] it conditions on (default: the image size)'),
});
export type ImageParams = z.output<typeof imageParams>;

/** What a client must send; the rest is optional. */
export const IMAGE_REQUIRED = ['prompt'] as const;
