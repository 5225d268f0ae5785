import fs from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

/**
 * T5's tokenizer (FLUX's `tokenizer_2`), from the model's `tokenizer.json` (a Unigram model),
 * run by @huggingface/tokenizers. diffusers asks for `padding="max_length", truncation=True`
 * at 256 tokens (schnell) or 512 (dev): the fast tokenizer truncates the prompt's own tokens to
 * one less than that and then appends `</s>`, so a long prompt still ends with `</s>`, and pads
 * with `<pad>` (id 0). Truncating after `</s>` has been added, as some ports do, cuts it off and
 * changes every embedding the transformer attends to.
 */
export interface T5Tokenizer {
  readonly eos: number;
  readonly pad: number;
  /** The prompt as exactly `length` ids: its tokens (at most length − 1), `</s>`, then padding. */
  encode(text: string, length: number): Int32Array;
}

type Json = Record<string, unknown>;

const EOS_TOKEN = '</s>';
const PAD_TOKEN = '<pad>';

/** `file` is the tokenizer.json; tokenizer_config.json beside it is read when present. */
export async function loadT5Tokenizer(file: string): Promise<T5Tokenizer> {
  const definition = JSON.parse(await fs.readFile(file, 'utf8')) as Json;
  let config: Json = {};
  try {
    config = JSON.parse(await fs.readFile(path.join(path.dirname(file), 'tokenizer_config.json'), 'utf8')) as Json;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const tokenizer = new Tokenizer(definition, config);
  const idOf = (token: string, role: string) => {
    const id = tokenizer.token_to_id(token);
    if (id === undefined) throw new Error(`the T5 tokenizer has no ${role} token ${JSON.stringify(token)}`);
    return id;
  };
  const eos = idOf(tokenContent(config.eos_token) ?? EOS_TOKEN, 'end');
  const pad = idOf(tokenContent(config.pad_token) ?? PAD_TOKEN, 'padding');
  return {
    eos,
    pad,
    encode(text, length) {
      const ids = tokenizer.encode(text, { add_special_tokens: false }).ids.slice(0, length - 1);
      const out = new Int32Array(length).fill(pad);
      out.set(ids);
      out[ids.length] = eos;
      return out;
    },
  };
}

function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string') return (value as Json).content as string;
  return undefined;
}
