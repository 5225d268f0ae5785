import fs from 'node:fs/promises';
import path from 'node:path';
import { KilnError } from '../../errors.js';
import { type GraphVariant, isGraphVariant, VARIANT_ORDER, variantFile, variantPreference } from './graph-variants.js';
import { FolderReader } from '../folder-reader.js';

/**
 * The two folder layouts a `musicgen-onnx` model comes in, recognised from its files. Both hold
 * transformers' `config.json` (a MusicgenConfig: text_encoder, audio_encoder and decoder
 * sub-configs), `tokenizer.json` (T5's) and, optionally, `generation_config.json` at the top:
 *
 * `optimum`: Hugging Face Optimum's `text-to-audio` export, graphs beside the configs:
 * `text_encoder.onnx`, the decoder as `decoder_model_merged.onnx` (one graph with an If on
 * `use_cache_branch`) or as the pair Optimum writes before merging, `decoder_model.onnx` (first
 * step) and `decoder_with_past_model.onnx` (later steps), and `encodec_decode.onnx`. Its
 * `build_delay_pattern_mask.onnx` is not used.
 *
 * `transformers-js`: the folders transformers.js loads (Xenova/musicgen-small and its kind):
 * the same graphs under `onnx/`.
 *
 * Each graph may come in several precisions (graph-variants.ts says which is run). Mono
 * models predict 4 codebooks per step; stereo ones (audio_channels 2) 8, the two channels'
 * codebooks interleaved.
 */
export type MusicgenLayout = 'optimum' | 'transformers-js';

export const MUSICGEN_PIPELINE = 'musicgen-onnx';

export interface MusicgenDefaults {
  durationSeconds: number;
  guidanceScale: number;
  topK: number;
  /** 0 (greedy) where generation_config.json says do_sample: false. */
  temperature: number;
}

export type DecoderGraphs = { merged: string } | { first: string; withPast: string };

export interface MusicgenFolder {
  dir: string;
  layout: MusicgenLayout;
  /** Graph files, relative to `dir`, and the variant each was taken in. */
  graphs: { textEncoder: string; decoder: DecoderGraphs; encodecDecode: string };
  variants: { textEncoder: GraphVariant; decoder: GraphVariant; encodecDecode: GraphVariant };
  tokenizerJson: string;
  /** The decoder's codebooks per step, all channels together. */
  codebooks: number;
  channels: number;
  /** Logits per codebook; the pad / decoder-start id is this (the embedding's extra row). */
  vocabSize: number;
  padTokenId: number;
  decoderStartTokenId: number;
  /** Longest decoder sequence the decoder's position table holds. */
  maxPositions: number;
  /** Width of the text encoder's hidden states. */
  textHiddenSize: number;
  decoderHeads: number;
  decoderHeadDim: number;
  sampleRate: number;
  frameRate: number;
  /**
   * Fewest frames the EnCodec decoder takes: its first convolution reflect-pads by half its
   * kernel, which needs more frames than that (transformers pads short inputs first; the
   * traced graph does not).
   */
  minFrames: number;
  defaults: MusicgenDefaults;
  /** The files a generation reads, relative to `dir`, sorted. */
  files: string[];
}

/** A folder Kiln will not run; `problems` says each thing missing or wrong, relative to the folder. */
export class MusicgenFolderError extends KilnError {
  constructor(readonly problems: string[]) {
    super('BAD_USER_INPUT', `not a usable MusicGen ONNX folder: ${problems.join('; ')}`);
    this.name = 'MusicgenFolderError';
  }
}

export const MUSICGEN_DEFAULT_DURATION_S = 8;
const FALLBACK_DEFAULTS = { guidanceScale: 3, topK: 250, temperature: 1 };
const GRAPH_FOLDERS: Record<MusicgenLayout, string> = { optimum: '', 'transformers-js': 'onnx' };

type Json = Record<string, unknown>;

/** Whether `dir` holds a MusicGen model (a config.json of model_type musicgen), however complete. */
export async function looksLikeMusicgenFolder(dir: string): Promise<boolean> {
  const config = await fs.readFile(path.join(dir, 'config.json'), 'utf8').then(
    (text) => JSON.parse(text) as Json,
    () => null,
  );
  return !!config && typeof config === 'object' && (config.model_type === 'musicgen' || config.model_type === 'musicgen_melody');
}

/**
 * Recognises the folder's layout, checks it has everything a generation needs, picks each
 * graph's variant and reads what the model says about itself. Throws MusicgenFolderError
 * naming every missing or inconsistent part. Reads only configs and directory listings, so a
 * model registry can call it at registration time.
 */
export async function inspectMusicgenFolder(dir: string, options: { variant?: string } = {}): Promise<MusicgenFolder> {
  const reader = new FolderReader(dir);
  const { problems } = reader;

  const asked = options.variant;
  if (asked !== undefined && !isGraphVariant(asked)) {
    throw new MusicgenFolderError([`unknown variant ${JSON.stringify(asked)} (variants: ${VARIANT_ORDER.join(', ')})`]);
  }
  const config = await reader.readJson('config.json', true);
  const generation = (await reader.readJson('generation_config.json', false)) ?? {};
  if (!(await reader.exists('tokenizer.json'))) problems.push('missing tokenizer.json (the T5 tokenizer; Kiln runs offline, so it must be in the folder)');

  // Graphs at the top are Optimum's layout, even where an onnx/ folder exists too.
  const [atTop, inOnnx] = [await anyGraphAt(dir, ''), await anyGraphAt(dir, 'onnx')];
  const layout: MusicgenLayout = atTop || !inOnnx ? 'optimum' : 'transformers-js';
  const graphDir = GRAPH_FOLDERS[layout];
  const rel = (file: string) => (graphDir ? `${graphDir}/${file}` : file);
  const present = new Set((await fs.readdir(path.join(dir, graphDir)).catch(() => [] as string[])).map(rel));
  const pick = (stem: string): [string, GraphVariant] | null => {
    for (const v of variantPreference(asked)) if (present.has(rel(variantFile(stem, v)))) return [rel(variantFile(stem, v)), v];
    return null;
  };
  const where = graphDir ? `${graphDir}/` : atTop ? 'the folder' : "the folder (Optimum's layout) or in onnx/ (transformers.js')";
  const textEncoder = pick('text_encoder');
  if (!textEncoder) problems.push(`missing ${rel('text_encoder.onnx')} (or a variant of it) in ${where}`);
  const encodec = pick('encodec_decode');
  if (!encodec) problems.push(`missing ${rel('encodec_decode.onnx')} (or a variant of it) in ${where}`);
  let decoder: [DecoderGraphs, GraphVariant] | null = null;
  const merged = pick('decoder_model_merged');
  if (merged) decoder = [{ merged: merged[0] }, merged[1]];
  else {
    for (const v of variantPreference(asked)) {
      const [first, withPast] = [rel(variantFile('decoder_model', v)), rel(variantFile('decoder_with_past_model', v))];
      if (present.has(first) && present.has(withPast)) {
        decoder = [{ first, withPast }, v];
        break;
      }
    }
    if (!decoder) problems.push(`missing ${rel('decoder_model_merged.onnx')} (or ${rel('decoder_model.onnx')} with ${rel('decoder_with_past_model.onnx')}, or a variant of them) in ${where}`);
  }
  if (asked && ![textEncoder, encodec, decoder].some((g) => g?.[1] === asked)) {
    problems.push(`no graph in variant ${asked} (files named *${variantFile('', asked)})`);
  }

  const model = config ? readModelConfig(config, problems) : null;
  const defaults = readDefaults(generation, problems);
  if (problems.length || !model || !textEncoder || !encodec || !decoder) throw new MusicgenFolderError(problems);

  const graphs = { textEncoder: textEncoder[0], decoder: decoder[0], encodecDecode: encodec[0] };
  const graphFiles = [graphs.textEncoder, ...Object.values(graphs.decoder), graphs.encodecDecode];
  // External weights (`model.onnx_data`, `model.onnx.data`) travel with their graphs.
  const weights = graphFiles.flatMap((g) => [`${g}_data`, `${g}.data`].filter((w) => present.has(w)));
  const files = [...['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'].filter((f) => f !== 'generation_config.json' || Object.keys(generation).length), ...graphFiles, ...weights];
  const kept = (await Promise.all(files.map(async (f) => ((await reader.exists(f)) ? f : null)))).filter((f): f is string => f !== null);
  return {
    dir,
    layout,
    graphs,
    variants: { textEncoder: textEncoder[1], decoder: decoder[1], encodecDecode: encodec[1] },
    tokenizerJson: path.join(dir, 'tokenizer.json'),
    ...model,
    defaults,
    files: kept.sort(),
  };
}

async function anyGraphAt(dir: string, folder: string): Promise<boolean> {
  const names = await fs.readdir(path.join(dir, folder)).catch(() => [] as string[]);
  return names.some((n) => /^(text_encoder|decoder_model|decoder_with_past_model|decoder_model_merged|encodec_decode)(_\w+)?\.onnx$/.test(n));
}

type ModelConfig = Omit<MusicgenFolder, 'dir' | 'layout' | 'graphs' | 'variants' | 'tokenizerJson' | 'defaults' | 'files'>;

function readModelConfig(config: Json, problems: string[]): ModelConfig | null {
  if (config.model_type === 'musicgen_melody') {
    problems.push('config.json: this is a MusicGen Melody model (chroma-conditioned), which the musicgen-onnx pipeline does not run');
    return null;
  }
  if (config.model_type !== 'musicgen') {
    problems.push(`config.json: model_type is ${JSON.stringify(config.model_type)}, not "musicgen"`);
    return null;
  }
  const section = (name: string): Json => {
    const value = config[name];
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Json;
    problems.push(`config.json has no ${name} section`);
    return {};
  };
  const [decoder, audio, text] = [section('decoder'), section('audio_encoder'), section('text_encoder')];
  const count = (json: Json, where: string, key: string, fallback?: number): number => {
    const value = json[key] ?? fallback;
    if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
    problems.push(`config.json: ${where}.${key} must be a positive whole number`);
    return 1;
  };
  const codebooks = count(decoder, 'decoder', 'num_codebooks');
  const channels = count(decoder, 'decoder', 'audio_channels', 1);
  if (channels > 2) problems.push(`config.json: decoder.audio_channels is ${channels}; MusicGen models are mono or stereo`);
  else if (codebooks % channels !== 0) problems.push(`config.json: decoder.num_codebooks (${codebooks}) does not split into ${channels} channels`);
  const vocabSize = count(decoder, 'decoder', 'vocab_size');
  const padTokenId = typeof decoder.pad_token_id === 'number' ? decoder.pad_token_id : vocabSize;
  const decoderStartTokenId = typeof decoder.decoder_start_token_id === 'number' ? decoder.decoder_start_token_id : padTokenId;
  const hidden = count(decoder, 'decoder', 'hidden_size');
  const heads = count(decoder, 'decoder', 'num_attention_heads');
  if (hidden % heads !== 0) problems.push(`config.json: decoder.hidden_size (${hidden}) does not split into ${heads} heads`);
  const sampleRate = count(audio, 'audio_encoder', 'sampling_rate');
  const ratios = Array.isArray(audio.upsampling_ratios) ? (audio.upsampling_ratios as unknown[]) : null;
  const hop = ratios && ratios.every((r) => typeof r === 'number' && r > 0) ? (ratios as number[]).reduce((a, b) => a * b, 1) : null;
  const frameRate = typeof audio.frame_rate === 'number' && audio.frame_rate > 0 ? audio.frame_rate : hop ? Math.ceil(sampleRate / hop) : null;
  if (frameRate === null) problems.push('config.json: audio_encoder has neither frame_rate nor upsampling_ratios, so its frame rate is unknown');
  const kernel = typeof audio.kernel_size === 'number' && audio.kernel_size > 0 ? audio.kernel_size : 1;
  const textHiddenSize = typeof text.d_model === 'number' ? text.d_model : count(text, 'text_encoder', 'hidden_size');
  return {
    codebooks,
    channels,
    vocabSize,
    padTokenId,
    decoderStartTokenId,
    maxPositions: count(decoder, 'decoder', 'max_position_embeddings', 2048),
    textHiddenSize,
    decoderHeads: heads,
    decoderHeadDim: hidden / heads,
    sampleRate,
    frameRate: frameRate ?? 1,
    minFrames: audio.pad_mode === 'reflect' ? Math.floor(kernel / 2) + 1 : 1,
  };
}

/** Request defaults from generation_config.json where it says, else facebook/musicgen-small's. */
function readDefaults(generation: Json, problems: string[]): MusicgenDefaults {
  const number = (key: string, fallback: number, check: (n: number) => boolean) => {
    const value = generation[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value === 'number' && check(value)) return value;
    problems.push(`generation_config.json: ${key} is ${JSON.stringify(value)}, which Kiln cannot use`);
    return fallback;
  };
  const sample = generation.do_sample !== false;
  return {
    durationSeconds: MUSICGEN_DEFAULT_DURATION_S,
    guidanceScale: number('guidance_scale', FALLBACK_DEFAULTS.guidanceScale, (n) => n >= 0),
    topK: number('top_k', FALLBACK_DEFAULTS.topK, (n) => Number.isInteger(n) && n >= 0),
    temperature: sample ? number('temperature', FALLBACK_DEFAULTS.temperature, (n) => n > 0) : 0,
  };
}
