import fs from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

/**
 * T5's tokenizer as MusicGen's processor runs it, from the model's own `tokenizer.json`
 * (sentencepiece Unigram), run by @huggingface/tokenizers: the prompt's pieces, then `</s>`,
 * no BOS and no truncation. The end token is appended here rather than by the file's
 * post-processor, so a tokenizer.json saved without one gives the same ids.
 */
export interface T5Tokenizer {
  readonly eos: number;
  readonly pad: number;
  encode(text: string): number[];
}

const EOS_TOKEN = '</s>';
const PAD_TOKEN = '<pad>';

export async function loadT5Tokenizer(tokenizerJson: string): Promise<T5Tokenizer> {
  const definition = JSON.parse(await fs.readFile(tokenizerJson, 'utf8')) as Record<string, unknown>;
  const config: Record<string, unknown> = await fs.readFile(path.join(path.dirname(tokenizerJson), 'tokenizer_config.json'), 'utf8').then(
    (text) => JSON.parse(text) as Record<string, unknown>,
    () => ({}),
  );
  const tokenizer = new Tokenizer(definition, config);
  const eos = tokenizer.token_to_id(typeof config.eos_token === 'string' ? config.eos_token : EOS_TOKEN);
  if (eos === undefined) throw new Error(`the tokenizer has no end token ${JSON.stringify(EOS_TOKEN)}`);
  const pad = tokenizer.token_to_id(typeof config.pad_token === 'string' ? config.pad_token : PAD_TOKEN) ?? 0;
  return {
    eos,
    pad,
    encode: (text) => [...tokenizer.encode(text, { add_special_tokens: false }).ids, eos],
  };
}
