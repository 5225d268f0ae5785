/**
 * Adds a model to a running Kiln from a folder or file on this machine:
 *
 *   npm run model:import -- --dir DIR --name NAME [--kind BASE|LORA] [--base MODEL_ID]
 *     [--trigger WORD] [--url http://localhost:4000] [--api-key KEY]
 *
 * A base model is a folder (a Stable Diffusion ONNX export); a LoRA adapter is one .safetensors
 * file. The files go through Kiln's direct upload, so Kiln checks them as it checks any upload.
 */
import { parseArgs } from 'node:util';
import { uploadModelFolder } from './model-upload.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    name: { type: 'string' },
    kind: { type: 'string', default: 'BASE' },
    base: { type: 'string' },
    trigger: { type: 'string' },
    url: { type: 'string', default: 'http://localhost:4000' },
    'api-key': { type: 'string' },
  },
});
if (!values.dir || !values.name || (values.kind !== 'BASE' && values.kind !== 'LORA')) {
  console.error('usage: model:import --dir DIR --name NAME [--kind BASE|LORA] [--base MODEL_ID] [--trigger WORD] [--url URL] [--api-key KEY]');
  process.exit(2);
}
try {
  const model = await uploadModelFolder(
    values.url!.replace(/\/+$/, ''),
    values.dir,
    { name: values.name, kind: values.kind, ...(values.base ? { baseModelId: values.base } : {}), ...(values.trigger ? { triggerWord: values.trigger } : {}) },
    values['api-key'] ? { authorization: `Bearer ${values['api-key']}` } : {},
  );
  console.log(`model ${model.name} (${model.id}): ${model.kind}, pipeline ${model.pipeline}`);
} catch (err) {
  console.error(`model:import: ${(err as Error).message}`);
  process.exit(1);
}
