import { z } from 'zod';

const pattern = z
  .string()
  .min(1, 'must not be empty')
  .max(300, 'must be at most 300 characters')
  .refine((p) => !p.replace(/^!/, '').startsWith('/') && !p.split('/').includes('..'), 'must be a path inside the repository');

/**
 * A model install's parameters as it runs with them: the one definition that the GraphQL input
 * (`InstallModelInput`), its validation and the stored row follow. Only `source` is required of
 * a client; the rest is filled in at submit.
 */
export const installParams = z.object({
  source: z
    .string()
    .min(1, 'must not be empty')
    .max(2048, 'must be at most 2048 characters')
    .describe('hf:owner/repo, optionally with @revision and :subfolder; or an https:// URL to one .safetensors file (a LoRA) or to a zip or tar archive'),
  name: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters').describe('default: the repository (and subfolder) or file name'),
  kind: z.enum(['BASE', 'LORA']).meta({ graphql: 'ModelKind', description: 'default: LORA when baseModelId is given, else BASE' }),
  baseModelId: z.uuid('must be a model id').nullable().meta({ graphql: 'ID', description: 'For a LoRA: the base model it applies to (its pipeline must take LoRAs).' }),
  triggerWord: z.string().max(200, 'must be at most 200 characters').nullable(),
  revision: z
    .string()
    .max(200, 'must be at most 200 characters')
    .nullable()
    .describe('A branch, tag or commit of a hub repository (default main); the same as source@revision.'),
  files: z
    .array(pattern)
    .max(100, 'must hold at most 100 patterns')
    .nullable()
    .describe(
      'Which files to take, as glob patterns (* within a name, ** across folders), e.g. ["*.json", "onnx/*_quantized.onnx"]; patterns starting with ! leave files out. Default: what the layout needs (see the README).',
    ),
});
export type InstallParams = z.output<typeof installParams>;

/** What a client must send; the rest is optional. */
export const INSTALL_REQUIRED = ['source'] as const;
