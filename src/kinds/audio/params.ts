import { z } from 'zod';

/**
 * A music generation's parameters as it runs with them: the one definition that the GraphQL
 * input (`GenerateAudioInput`), its validation, the stored row, the runner's request and the
 * WAV's metadata follow. Only `prompt` is required of a client; the model fills the rest at
 * submit. These are the service's outer limits; each model narrows them (`Model.capabilities`).
 */
export const audioParams = z.object({
  prompt: z.string().trim().min(1, 'must not be empty').max(500, 'must be at most 500 characters').describe('1..500 characters after trimming'),
  modelId: z.uuid('must be a model id').meta({ graphql: 'ID', description: 'a music model; default: the default music model (the built-in one)' }),
  durationSeconds: z
    .number()
    .min(1, 'must be between 1 and 30')
    .max(30, 'must be between 1 and 30')
    .describe('seconds of audio, 1..30 (a model may allow less), default 8'),
  guidanceScale: z.number().min(0, 'must be between 0 and 20').max(20, 'must be between 0 and 20').describe('classifier-free guidance, 0..20, default from the model (3)'),
  seed: z
    .number()
    .int('must be a whole number')
    .min(0, 'must be between 0 and 4294967295')
    .max(4294967295, 'must be between 0 and 4294967295')
    .meta({ graphql: 'Float', description: '0..4294967295; random when omitted, always recorded' }),
  topK: z
    .number()
    .int('must be a whole number')
    .min(0, 'must be between 0 and 65536')
    .max(65536, 'must be between 0 and 65536')
    .describe("sample among the k likeliest tokens, 0..the model's vocabulary (0: all), default 250 or the vocabulary if smaller"),
  temperature: z.number().min(0, 'must be between 0 and 4').max(4, 'must be between 0 and 4').describe('softmax temperature, 0..4, default 1; 0 is greedy (always the likeliest token)'),
});
export type AudioParams = z.output<typeof audioParams>;

/** What a client must send; the rest is optional. */
export const AUDIO_REQUIRED = ['prompt'] as const;
