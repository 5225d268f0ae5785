/**
 * Writes a LoRA adapter for Kiln's built-in model, to upload and try:
 *
 *   node --import tsx scripts/make-builtin-lora.ts --out FILE.safetensors [--rank 4] [--seed 1] [--strength 1]
 */
import fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { makeBuiltinLora } from '../src/models/builtin-lora.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    rank: { type: 'string', default: '4' },
    seed: { type: 'string', default: '1' },
    strength: { type: 'string', default: '1' },
  },
});

const number = (name: string, text: string, integer: boolean) => {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    console.error(`--${name} ${text} is not ${integer ? 'an integer' : 'a number'}`);
    process.exit(2);
  }
  return n;
};

if (!values.out) {
  console.error('usage: node --import tsx scripts/make-builtin-lora.ts --out FILE.safetensors [--rank 4] [--seed 1] [--strength 1]');
  process.exit(2);
}
const options = {
  rank: number('rank', values.rank, true),
  seed: number('seed', values.seed, true),
  strength: number('strength', values.strength, false),
};
if (options.rank < 1) {
  console.error(`--rank ${options.rank} is not a positive integer`);
  process.exit(2);
}
const bytes = makeBuiltinLora(options);
await fs.writeFile(values.out, bytes);
console.log(`wrote ${values.out} (${bytes.length} bytes)`);
