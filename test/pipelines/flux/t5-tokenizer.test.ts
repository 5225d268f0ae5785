import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadT5Tokenizer, type T5Tokenizer } from '../../../src/pipelines/flux/t5-tokenizer.js';
import { t5TokenizerJson } from '../../support/flux-fixtures.js';

/** A T5-style tokenizer.json over a few words (ids from 4) and the letters (ids from 9): `▁` is 3, `</s>` 1, `<pad>` 0. */
const WORDS = ['a', 'red', 'fox', 'at', 'dusk'];

describe('the T5 tokenizer FLUX reads from tokenizer_2/tokenizer.json', () => {
  let dir: string;
  let tokenizer: T5Tokenizer;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-t5-'));
    await fs.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(t5TokenizerJson(WORDS)));
    tokenizer = await loadT5Tokenizer(path.join(dir, 'tokenizer.json'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('ends a short prompt with </s> and pads it with <pad> to the length asked for', () => {
    expect(tokenizer.eos).toBe(1);
    expect(tokenizer.pad).toBe(0);
    expect(Array.from(tokenizer.encode('a red fox at dusk', 8))).toEqual([4, 5, 6, 7, 8, 1, 0, 0]);
  });

  it('splits words it has no piece for into letters, as the Unigram model does', () => {
    // "ox" is no piece: ▁ then o, x.
    expect(Array.from(tokenizer.encode('ox', 4))).toEqual([3, 9 + 14, 9 + 23, 1]);
  });

  it('truncates a long prompt to length − 1 tokens and keeps </s> as the last token', () => {
    const ids = tokenizer.encode('a red fox at dusk a red fox at dusk', 6);
    expect(Array.from(ids)).toEqual([4, 5, 6, 7, 8, 1]);
    expect(tokenizer.encode('dusk '.repeat(600), 512)).toHaveLength(512);
    expect(tokenizer.encode('dusk '.repeat(600), 512)[511]).toBe(1);
    expect(tokenizer.encode('dusk '.repeat(600), 256)[255]).toBe(1);
  });

  it('takes its end and padding tokens from tokenizer_config.json when it names them', async () => {
    const other = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-t5-'));
    try {
      await fs.writeFile(path.join(other, 'tokenizer.json'), JSON.stringify(t5TokenizerJson(WORDS)));
      await fs.writeFile(path.join(other, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>', pad_token: '<unk>' }));
      const t = await loadT5Tokenizer(path.join(other, 'tokenizer.json'));
      expect(Array.from(t.encode('fox', 4))).toEqual([6, 1, 2, 2]);
    } finally {
      await fs.rm(other, { recursive: true, force: true });
    }
  });
});
