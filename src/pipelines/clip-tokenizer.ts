import fs from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

/**
 * CLIP's BPE tokenizer, offline, from the model's own files, run by @huggingface/tokenizers
 * (which reproduces the token ids diffusers' CLIPTokenizer gives, the fixture's reference ids
 * included). A folder with only `vocab.json` and `merges.txt` (older exports, ONNX Runtime's
 * turbo exports) gets the `tokenizer.json` the Hugging Face fast CLIP tokenizer is defined by:
 * NFC, whitespace runs to one space, lowercase; CLIP's word pattern; byte-level BPE with a
 * `</w>` word suffix. Every prompt becomes exactly 77 ids: BOS, at most 75 tokens, EOS, then
 * the model's pad token (SD 1.x pads with EOS, SD 2.x and SD-Turbo with "!", id 0).
 */

export const CLIP_MAX_LENGTH = 77;
const BOS_TOKEN = '<|startoftext|>';
const EOS_TOKEN = '<|endoftext|>';

/** Where a tokenizer's files are: `tokenizer.json`, or `vocab.json` with `merges.txt`. */
export interface TokenizerFiles {
  dir: string;
  tokenizerJson: string | null;
  vocab: string | null;
  merges: string | null;
}

export interface ClipTokenizer {
  readonly bos: number;
  readonly eos: number;
  readonly pad: number;
  /** The prompt as 77 token ids. */
  encode(text: string): Int32Array;
}

type Json = Record<string, unknown>;

export async function loadClipTokenizer(files: TokenizerFiles): Promise<ClipTokenizer> {
  const optionalJson = async (name: string): Promise<Json> => {
    try {
      return JSON.parse(await fs.readFile(path.join(files.dir, name), 'utf8')) as Json;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
  };
  const config = await optionalJson('tokenizer_config.json');
  const specialTokens = await optionalJson('special_tokens_map.json');
  const definition = files.tokenizerJson
    ? (JSON.parse(await fs.readFile(files.tokenizerJson, 'utf8')) as Json)
    : clipDefinition(
        JSON.parse(await fs.readFile(files.vocab!, 'utf8')) as Record<string, number>,
        await fs.readFile(files.merges!, 'utf8'),
        tokenContent(config.unk_token) ?? EOS_TOKEN,
      );
  const tokenizer = new Tokenizer(definition, config);
  const idOf = (token: string, role: string) => {
    const id = tokenizer.token_to_id(token);
    if (id === undefined) throw new Error(`the tokenizer has no ${role} token ${JSON.stringify(token)}`);
    return id;
  };
  const bos = idOf(tokenContent(config.bos_token) ?? BOS_TOKEN, 'start');
  const eos = idOf(tokenContent(config.eos_token) ?? EOS_TOKEN, 'end');
  const padToken = tokenContent(config.pad_token) ?? tokenContent(specialTokens.pad_token);
  const pad = padToken === undefined ? eos : idOf(padToken, 'padding');

  return {
    bos,
    eos,
    pad,
    encode(text) {
      const ids = tokenizer.encode(text, { add_special_tokens: false }).ids.slice(0, CLIP_MAX_LENGTH - 2);
      const out = new Int32Array(CLIP_MAX_LENGTH).fill(pad);
      out[0] = bos;
      out.set(ids, 1);
      out[ids.length + 1] = eos;
      return out;
    },
  };
}

/** A token given as a string or as an AddedToken object ({ content }). */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string') return (value as Json).content as string;
  return undefined;
}

/** The Hugging Face fast CLIP tokenizer's definition around a vocabulary and its merges. */
function clipDefinition(vocab: Record<string, number>, mergesText: string, unk: string): Json {
  const merges = mergesText
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#version'))
    .map((line) => line.trim().split(' '));
  const special = [BOS_TOKEN, EOS_TOKEN]
    .filter((token) => token in vocab)
    .map((token) => ({ id: vocab[token], content: token, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  return {
    version: '1.0',
    added_tokens: special,
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: { Regex: "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" },
          behavior: 'Removed',
          invert: true,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}
