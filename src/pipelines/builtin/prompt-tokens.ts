import { BUILTIN } from './model-files.js';

/**
 * The built-in model's tokenizer: lower-cased words (letters and digits), each hashed with
 * FNV-1a into the embedding table (id 0 is padding), at most BUILTIN.tokens of them.
 */
export function builtinTokenIds(prompt: string): BigInt64Array {
  const ids = new BigInt64Array(BUILTIN.tokens);
  const words = prompt.toLowerCase().normalize('NFKC').match(/[\p{L}\p{N}]+/gu) ?? [];
  words.slice(0, BUILTIN.tokens).forEach((word, i) => {
    ids[i] = BigInt((fnv1a(word) % (BUILTIN.vocab - 1)) + 1);
  });
  return ids;
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
