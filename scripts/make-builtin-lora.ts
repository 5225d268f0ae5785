/** Writes a LoRA adapter for Kiln's built-in model, to upload and try (USAGE below). */
import fs from 'node:fs/promises';
import { parseCommandLine, usageError } from '../src/cli/command-line.js';
import { makeBuiltinLora } from '../src/models/builtin-lora.js';

const USAGE = `usage: npm run lora:builtin -- --out FILE.safetensors [--rank 4] [--seed 1] [--strength 1]
  --out FILE      where to write the adapter
  --rank N        its rank (default 4)
  --seed N        the seed its matrices are drawn from (default 1)
  --strength X    its updates' size, relative to the weights they patch (default 1)
  --help          this text`;

const { values } = parseCommandLine(USAGE, {
  out: { type: 'string' },
  rank: { type: 'string', default: '4' },
  seed: { type: 'string', default: '1' },
  strength: { type: 'string', default: '1' },
});

const number = (name: string, text: string, integer: boolean) => {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) usageError(USAGE, `--${name} ${text} is not ${integer ? 'an integer' : 'a number'}`);
  return n;
};

if (!values.out) usageError(USAGE, '--out is required');
const options = {
  rank: number('rank', values.rank, true),
  seed: number('seed', values.seed, true),
  strength: number('strength', values.strength, false),
};
if (options.rank < 1) usageError(USAGE, `--rank ${options.rank} is not a positive integer`);
const bytes = makeBuiltinLora(options);
await fs.writeFile(values.out, bytes);
console.log(`wrote ${values.out} (${bytes.length} bytes)`);
