import { z } from 'zod';
import { trainerNames } from '../../trainers/trainer.js';

const steps = (what: string) => z.number().int('must be a whole number').min(0, 'must be between 0 and 100000').max(100_000, 'must be between 0 and 100000').describe(what);

/**
 * A LoRA training's parameters as it runs with them: the one definition that the GraphQL input
 * (`TrainLoraInput`), its validation, the stored row and the worker's training spec follow.
 * A client must send the dataset, a name and the trigger word; the trainer's defaults fill the
 * rest at submit (see `trainingDefaults`). These are the outer limits; each trainer narrows them.
 */
export const trainingParams = z.object({
  datasetId: z.uuid('must be a dataset id').meta({ graphql: 'ID', description: 'A ready dataset.' }),
  baseModelId: z.uuid('must be a model id').meta({ graphql: 'ID', description: 'The base model the LoRA is for; default: the default model.' }),
  name: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters').describe("The adapter's name (its model's, and `ss_output_name`); 1..200 characters."),
  triggerWord: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(64, 'must be at most 64 characters')
    .regex(/^[^,\p{Cc}]+$/u, 'must be one word or phrase, without commas or control characters')
    .describe('Put first in every caption that lacks it; generate with it to call on what was trained. 1..64 characters, no commas.'),
  trainer: z.enum(trainerNames).meta({ graphql: 'Trainer', description: "Default: builtin for the built-in model, ai-toolkit for Stable Diffusion." }),
  steps: z.number().int('must be a whole number').min(1, 'must be between 1 and 100000').max(100_000, 'must be between 1 and 100000').describe('1..100000; default 200 (builtin), 1000 (others).'),
  rank: z.number().int('must be a whole number').min(1, 'must be between 1 and 256').max(256, 'must be between 1 and 256').describe('The LoRA rank, 1..256; default 8 (builtin), 16 (others).'),
  alpha: z.number().positive('must be more than 0').max(1024, 'must be at most 1024').describe('Scales the LoRA by alpha / rank; 0..1024, default: the rank.'),
  learningRate: z.number().positive('must be more than 0').max(1, 'must be at most 1').describe('AdamW, constant; default 0.01 (builtin), 0.0001 (others).'),
  resolution: z
    .number()
    .int('must be a whole number')
    .min(8, 'must be between 8 and 2048')
    .max(2048, 'must be between 8 and 2048')
    .refine((v) => v % 8 === 0, 'must be a multiple of 8')
    .describe('Side of the square images are trained at (resized to cover it, centre-cropped); every image must be at least this on its short side. Default 32 (builtin, at most 128), 512 (others).'),
  batchSize: z.number().int('must be a whole number').min(1, 'must be between 1 and 64').max(64, 'must be between 1 and 64').describe('1..64; default 4 (builtin), 1 (others).'),
  seed: z
    .number()
    .int('must be a whole number')
    .min(0, 'must be between 0 and 4294967295')
    .max(4294967295, 'must be between 0 and 4294967295')
    .meta({ graphql: 'Float', description: '0..4294967295; random when omitted, always recorded.' }),
  checkpointEvery: steps('A checkpoint every this many steps, kept in storage so that a retry continues from it; 0 for none. Default: a tenth of the steps.'),
  sampleEvery: steps('Sample images (trigger word, first caption) every this many steps, as previews of TRAINING events; 0 for none. Default: a quarter of the steps.'),
  trainingWeights: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(1000, 'must be at most 1000 characters')
    .nullable()
    .describe("ai-toolkit and sd-scripts only: what the tool loads (a diffusers folder or checkpoint on the worker's host, or a Hugging Face id), since ONNX exports hold no PyTorch weights. Default: the base model's folder."),
});
export type TrainingParams = z.output<typeof trainingParams>;

/** What a client must send; the rest is optional. */
export const TRAINING_REQUIRED = ['datasetId', 'name', 'triggerWord'] as const;
