import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClipTokenizer, loadClipTokenizer } from '../../../src/pipelines/clip-tokenizer.js';
import { SHARED_FIXTURES, writeSdFixture } from '../../support/sd-fixtures.js';

const REFERENCE = path.join(SHARED_FIXTURES, 'sd-tiny-reference/reference.json');
const SD_TINY_TOKENIZER = path.join(SHARED_FIXTURES, 'sd-tiny/tokenizer');

const tinyFiles = (dir: string) => ({ dir: path.join(dir, 'tokenizer'), tokenizerJson: null, vocab: path.join(dir, 'tokenizer/vocab.json'), merges: path.join(dir, 'tokenizer/merges.txt') });

describe("the CLIP tokenizer on Kiln's tiny vocabulary", () => {
  let dir: string;
  let vocab: Record<string, number>;
  let sd1: ClipTokenizer;
  let turbo: ClipTokenizer;
  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kiln-clip-'));
    await writeSdFixture(path.join(dir, 'sd1'), { layout: 'optimum' });
    await writeSdFixture(path.join(dir, 'turbo'), { layout: 'ort-turbo' });
    vocab = JSON.parse(await fsp.readFile(path.join(dir, 'sd1/tokenizer/vocab.json'), 'utf8'));
    sd1 = await loadClipTokenizer(tinyFiles(path.join(dir, 'sd1')));
    turbo = await loadClipTokenizer(tinyFiles(path.join(dir, 'turbo')));
  });
  afterAll(() => fsp.rm(dir, { recursive: true, force: true }));

  const ids = (...tokens: string[]) => tokens.map((t) => vocab[t]!);
  const content = (encoded: Int32Array) => Array.from(encoded.subarray(0, encoded.indexOf(sd1.eos) + 1));

  it('starts with BOS, ends with EOS and pads to 77 with the pad token, EOS for SD 1.x and "!" for SD-Turbo', () => {
    expect([sd1.bos, sd1.eos, sd1.pad]).toEqual(ids('<|startoftext|>', '<|endoftext|>', '<|endoftext|>'));
    expect(turbo.pad).toBe(0);
    const a = sd1.encode('a red fox');
    expect(a).toHaveLength(77);
    expect(Array.from(a.subarray(0, 5))).toEqual(ids('<|startoftext|>', 'a</w>', 'red</w>', 'fox</w>', '<|endoftext|>'));
    expect(a.subarray(5).every((id) => id === sd1.eos)).toBe(true);
    const b = turbo.encode('a red fox');
    expect(Array.from(b.subarray(0, 5))).toEqual(Array.from(a.subarray(0, 5)));
    expect(b.subarray(5).every((id) => id === 0)).toBe(true);
  });

  it('lowercases, collapses whitespace and splits punctuation and unknown words into byte tokens', () => {
    expect(content(sd1.encode('  A   RED\tFox!! '))).toEqual(ids('<|startoftext|>', 'a</w>', 'red</w>', 'fox</w>', '!', '!</w>', '<|endoftext|>'));
    expect(content(sd1.encode('zq 42'))).toEqual(ids('<|startoftext|>', 'z', 'q</w>', '4</w>', '2</w>', '<|endoftext|>'));
  });

  it('keeps at most 75 tokens between BOS and EOS', () => {
    const long = sd1.encode('whale '.repeat(100));
    expect(long).toHaveLength(77);
    expect(long[0]).toBe(sd1.bos);
    expect(long[76]).toBe(sd1.eos);
    expect(long.subarray(1, 76).every((id) => id === vocab['whale</w>'])).toBe(true);
    expect(content(sd1.encode(''))).toEqual([sd1.bos, sd1.eos]);
  });
});

describe.skipIf(!fs.existsSync(REFERENCE))("the CLIP tokenizer against diffusers' reference ids", () => {
  const reference = () => JSON.parse(fs.readFileSync(REFERENCE, 'utf8')).tokenizer as { text: string; input_ids: number[] }[];

  it.each([
    ['tokenizer.json', { dir: SD_TINY_TOKENIZER, tokenizerJson: path.join(SD_TINY_TOKENIZER, 'tokenizer.json'), vocab: null, merges: null }],
    ['vocab.json and merges.txt', { dir: SD_TINY_TOKENIZER, tokenizerJson: null, vocab: path.join(SD_TINY_TOKENIZER, 'vocab.json'), merges: path.join(SD_TINY_TOKENIZER, 'merges.txt') }],
  ])('gives identical ids for every reference sentence from %s', async (_, files) => {
    const tokenizer = await loadClipTokenizer(files);
    const cases = reference();
    expect(cases.length).toBeGreaterThan(0);
    for (const { text, input_ids } of cases) expect(Array.from(tokenizer.encode(text)), text).toEqual(input_ids);
  });
});
