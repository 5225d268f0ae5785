/**
 * Adds a model to a running Kiln from a folder or file on this machine (USAGE below). A base
 * model is a folder (an ONNX export); a LoRA adapter is one .safetensors file. The files go
 * through Kiln's direct upload, so Kiln checks them as it checks any upload.
 */
import { parseCommandLine, usageError } from './command-line.js';
import { uploadModelFolder } from './model-upload.js';

const USAGE = `usage: npm run model:import -- --dir PATH --name NAME [--kind BASE|LORA] [--base MODEL_ID] [--trigger WORD]
                            [--url URL] [--api-key KEY]
  --dir PATH      a base model's folder (an ONNX export), or a LoRA adapter's .safetensors file
  --name NAME     the model's name in Kiln
  --kind KIND     BASE (the default) or LORA
  --base ID       for a LoRA: the id of the base model it applies to
  --trigger WORD  for a LoRA: its trigger word
  --url URL       the running Kiln to send it to (default http://localhost:4000)
  --api-key KEY   one of the Kiln's KILN_API_KEYS, when it requires one
  --help          this text`;

const { values } = parseCommandLine(USAGE, {
  dir: { type: 'string' },
  name: { type: 'string' },
  kind: { type: 'string', default: 'BASE' },
  base: { type: 'string' },
  trigger: { type: 'string' },
  url: { type: 'string', default: 'http://localhost:4000' },
  'api-key': { type: 'string' },
});
if (!values.dir || !values.name) usageError(USAGE, '--dir and --name are required');
if (values.kind !== 'BASE' && values.kind !== 'LORA') usageError(USAGE, `--kind is BASE or LORA, not ${values.kind}`);
try {
  const model = await uploadModelFolder(
    values.url.replace(/\/+$/, ''),
    values.dir,
    { name: values.name, kind: values.kind, ...(values.base ? { baseModelId: values.base } : {}), ...(values.trigger ? { triggerWord: values.trigger } : {}) },
    values['api-key'] ? { authorization: `Bearer ${values['api-key']}` } : {},
  );
  console.log(`model ${model.name} (${model.id}): ${model.kind}, pipeline ${model.pipeline}`);
} catch (err) {
  console.error(`model:import: ${(err as Error).message}`);
  process.exit(1);
}
