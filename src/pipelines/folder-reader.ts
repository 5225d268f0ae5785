import fs from 'node:fs/promises';
import path from 'node:path';
import type { TokenizerFiles } from './clip-tokenizer.js';

type Json = Record<string, unknown>;

/**
 * Reads the small files of a model folder (configs, tokenizers, listings) for an inspection
 * that reports every problem at once: each missing or unreadable file adds one line to
 * `problems`, named relative to the folder, instead of throwing at the first.
 */
export class FolderReader {
  readonly problems: string[] = [];

  constructor(readonly dir: string) {}

  async exists(rel: string): Promise<boolean> {
    return !!(await fs.stat(path.join(this.dir, rel)).catch(() => null))?.isFile();
  }

  /** The JSON object in `rel`; null (and a problem, if `required`) when it is absent, null and a problem when it is not an object. */
  async readJson(rel: string, required: boolean): Promise<Json | null> {
    let text: string;
    try {
      text = await fs.readFile(path.join(this.dir, rel), 'utf8');
    } catch {
      if (required) this.problems.push(`missing ${rel}`);
      return null;
    }
    try {
      const value: unknown = JSON.parse(text);
      if (value && typeof value === 'object' && !Array.isArray(value)) return value as Json;
    } catch {
      // reported below
    }
    this.problems.push(`${rel} is not a JSON object`);
    return null;
  }

  /** The CLIP tokenizer files in folder `sub`: `tokenizer.json`, or `vocab.json` with `merges.txt`. `why` ends the problem line when they are missing. */
  async tokenizer(sub: string, why = ''): Promise<TokenizerFiles> {
    const files: TokenizerFiles = { dir: path.join(this.dir, sub), tokenizerJson: null, vocab: null, merges: null };
    if (await this.exists(`${sub}/tokenizer.json`)) return { ...files, tokenizerJson: path.join(this.dir, sub, 'tokenizer.json') };
    const [vocab, merges] = [await this.exists(`${sub}/vocab.json`), await this.exists(`${sub}/merges.txt`)];
    if (vocab && merges) return { ...files, vocab: path.join(this.dir, sub, 'vocab.json'), merges: path.join(this.dir, sub, 'merges.txt') };
    const absent = [!vocab && `${sub}/vocab.json`, !merges && `${sub}/merges.txt`].filter(Boolean).join(' and ');
    this.problems.push(`missing ${absent} (or ${sub}/tokenizer.json)${why}`);
    return files;
  }

  /** Every file under the given part folders, plus the given top-level files, relative to the folder, sorted. */
  async listFiles(parts: readonly string[], topLevel: readonly string[]): Promise<string[]> {
    const files = [...topLevel];
    for (const folder of parts) {
      const entries = await fs.readdir(path.join(this.dir, folder), { recursive: true, withFileTypes: true }).catch(() => []);
      for (const e of entries) if (e.isFile()) files.push(path.relative(this.dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
    }
    return files.sort();
  }
}
