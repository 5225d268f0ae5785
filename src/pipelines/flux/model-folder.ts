import fs from 'node:fs/promises';
import path from 'node:path';
import { KilnError } from '../../errors.js';
import { type GraphSummary, GraphSummaryError, type GraphValue, summarizeGraph } from '../onnx/graph-summary.js';
import { unrunnableReasons } from '../onnx/runtime-support.js';
import type { TokenizerFiles } from '../clip-tokenizer.js';
import { LATENT_CHANNELS, PACKED_WIDTH } from './latents.js';
import { FLUX_DEV_SCHEDULER, FLUX_SCHNELL_SCHEDULER, type FlowMatchConfig, FlowMatchConfigError, parseFlowMatchConfig } from './schedule.js';
import { FolderReader } from '../folder-reader.js';

/**
 * The two folder layouts a `flux-onnx` model (FLUX.1 schnell or dev, text to image) comes in.
 *
 * `optimum`: Hugging Face Optimum's export of a diffusers FluxPipeline: `model_index.json`,
 * `text_encoder/model.onnx` (CLIP-L: `input_ids` → `pooler_output`), `text_encoder_2/model.onnx`
 * (T5-XXL: `input_ids` → `last_hidden_state`), `transformer/model.onnx` (+ config.json),
 * `vae_decoder/model.onnx` (+ config.json: scaling and shift factors), `tokenizer/` (CLIP),
 * `tokenizer_2/tokenizer.json` (T5) and `scheduler/scheduler_config.json`. Large graphs keep
 * their weights in external data files beside them (`model.onnx_data`).
 *
 * Text encoders and tokenizers come together or not at all: a folder with none of them (or whose
 * model_index.json declares none, `[null, null]`) runs from precomputed prompt embeddings
 * only; one with some of them must have all.
 *
 * `bfl`: the official ONNX exports Black Forest Labs publish with NVIDIA (FLUX.1-dev-onnx,
 * FLUX.1-schnell-onnx), made for TensorRT: `clip.opt/model.onnx` (`input_ids` →
 * `text_embeddings`, `pooled_embeddings`), `t5.opt/model.onnx` (→ `text_embeddings`),
 * `transformer.opt/<precision>/model.onnx` (→ `latent`), `vae.opt/model.onnx` (`latent` →
 * `images`, taking already scaled and shifted latents), weights in external data files. No
 * configs, tokenizers or scheduler: FLUX.1's are assumed (VAE 0.3611/0.1159, dev's or
 * schnell's scheduler), and since Kiln works offline the tokenizers must be added as
 * `tokenizer/` and `tokenizer_2/` (from the FLUX.1 repository). The transformers published are
 * bf16, fp8 and fp4, which onnxruntime cannot run: such a folder is refused with the reason for
 * each precision, and one carrying an fp16 or fp32 conversion (`transformer.opt/fp16/`) runs.
 *
 * Which FLUX.1 it is follows from the transformer: dev takes a `guidance` input (the distilled
 * guidance scale, config `guidance_embeds`), schnell does not.
 */
export type FluxLayout = 'optimum' | 'bfl';
export type FluxVariant = 'dev' | 'schnell';

export interface FluxDefaults {
  steps: number;
  /** dev's distilled guidance; 0 for schnell, which takes none. */
  guidanceScale: number;
  width: number;
  height: number;
}

/** Input and output names of each graph, as this folder's export spells them. */
export interface FluxGraphIo {
  clip: { inputIds: string; pooled: string } | null;
  t5: { inputIds: string; hiddenStates: string } | null;
  transformer: {
    hiddenStates: string;
    encoderHiddenStates: string;
    pooledProjections: string;
    timestep: string;
    imgIds: string;
    txtIds: string;
    guidance: string | null;
    output: string;
  };
  vae: { latent: string; image: string };
}

export interface FluxFolder {
  dir: string;
  layout: FluxLayout;
  variant: FluxVariant;
  /** Graph files, relative to `dir`; the text encoders are null in folders that have none. */
  graphs: { clip: string | null; t5: string | null; transformer: string; vaeDecoder: string };
  io: FluxGraphIo;
  /** Present exactly when the text encoders are. */
  tokenizers: { clip: TokenizerFiles; t5: string } | null;
  scheduler: FlowMatchConfig;
  vae: { scalingFactor: number; shiftFactor: number };
  /** T5 tokens per prompt: 256 for schnell, 512 for dev, or what the graphs fix. */
  maxSequenceLength: number;
  /** Width of the T5 states and of the pooled CLIP vector the transformer takes, where known. */
  jointAttentionDim: number | null;
  pooledProjectionDim: number | null;
  defaults: FluxDefaults;
  /** Each graph's summary, by its path. */
  summaries: Map<string, GraphSummary>;
  /** Every file of the model's parts, relative to `dir`, sorted. */
  files: string[];
}

/** A folder Kiln will not run; `problems` lists everything missing or wrong, relative to the folder. */
export class FluxFolderError extends KilnError {
  constructor(readonly problems: string[]) {
    super('BAD_USER_INPUT', `not a usable FLUX.1 ONNX folder: ${problems.join('; ')}`);
    this.name = 'FluxFolderError';
  }
}

/** FLUX.1's VAE, for folders without vae_decoder/config.json. */
export const FLUX_VAE = { scalingFactor: 0.3611, shiftFactor: 0.1159 };
const SEQUENCE_LENGTH: Record<FluxVariant, number> = { schnell: 256, dev: 512 };
const DEFAULTS: Record<FluxVariant, FluxDefaults> = {
  schnell: { steps: 4, guidanceScale: 0, width: 1024, height: 1024 },
  dev: { steps: 28, guidanceScale: 3.5, width: 1024, height: 1024 },
};
/** Transformer precisions in the order Kiln prefers them, of those onnxruntime can run. */
export const PRECISION_ORDER = ['fp16', 'fp32'];

/** The part folders of each layout. */
export const OPTIMUM_PARTS = ['text_encoder', 'text_encoder_2', 'transformer', 'vae_decoder', 'tokenizer', 'tokenizer_2', 'scheduler'];
export const BFL_PARTS = ['clip.opt', 't5.opt', 'transformer.opt', 'vae.opt', 'tokenizer', 'tokenizer_2'];

type Json = Record<string, unknown>;

const isFile = async (file: string) => !!(await fs.stat(file).catch(() => null))?.isFile();
const isDir = async (dir: string) => !!(await fs.stat(dir).catch(() => null))?.isDirectory();
const anyDir = async (dir: string, names: string[]) => (await Promise.all(names.map((n) => isDir(path.join(dir, n))))).some(Boolean);

/**
 * Whether `dir` looks like a FLUX.1 folder at all (a model_index.json naming a Flux pipeline, or
 * a `transformer.opt/` folder), without checking it: for callers choosing a pipeline by folder.
 */
export async function looksLikeFluxFolder(dir: string): Promise<boolean> {
  if (await isDir(path.join(dir, 'transformer.opt'))) return true;
  try {
    const index = JSON.parse(await fs.readFile(path.join(dir, 'model_index.json'), 'utf8')) as Json;
    return /^Flux/.test(String(index._class_name ?? ''));
  } catch {
    return false;
  }
}

/**
 * Recognises the folder's layout, checks that it has everything a generation needs and that
 * onnxruntime can run its graphs, and reads what the model says about itself. Throws
 * FluxFolderError listing every problem found. Reads the configs, the tokenizer listings and
 * each graph's structure (never its weights), so a registry can call it when a model arrives.
 */
export async function inspectFluxFolder(dir: string): Promise<FluxFolder> {
  const layout: FluxLayout | null = (await isDir(path.join(dir, 'transformer.opt'))) ? 'bfl' : (await isFile(path.join(dir, 'model_index.json'))) || (await isDir(path.join(dir, 'transformer'))) ? 'optimum' : null;
  if (!layout) {
    throw new FluxFolderError(['found neither model_index.json with transformer/ (a Hugging Face Optimum export) nor transformer.opt/ (the BFL/NVIDIA ONNX export)']);
  }
  const reader = new FolderReader(dir);
  const { problems } = reader;
  const summaries = new Map<string, GraphSummary>();
  /** The graph's summary, or null (with the problem noted) when it is missing or onnxruntime cannot run it. */
  const graph = async (rel: string, required = true): Promise<GraphSummary | null> => {
    if (!(await isFile(path.join(dir, rel)))) {
      if (required) problems.push(`missing ${rel}`);
      return null;
    }
    let summary: GraphSummary;
    try {
      summary = await summarizeGraph(path.join(dir, rel));
    } catch (err) {
      if (!(err instanceof GraphSummaryError)) throw err;
      problems.push(`${rel} is not a well-formed ONNX file`);
      return null;
    }
    const reasons = unrunnableReasons(rel, summary);
    problems.push(...reasons);
    if (reasons.length) return null;
    summaries.set(rel, summary);
    return summary;
  };

  // Graphs, tokenizers and configs of each layout.
  let graphs: FluxFolder['graphs'];
  let encoders: 'present' | 'absent';
  let schedulerJson: Json | null = null;
  let transformerConfig: Json | null = null;
  let vaeConfig: Json | null = null;
  if (layout === 'optimum') {
    const index = await reader.readJson('model_index.json', true);
    const className = index ? String(index._class_name ?? '') : 'FluxPipeline';
    if (className !== 'FluxPipeline') problems.push(`model_index.json names ${JSON.stringify(className)}; the flux-onnx pipeline runs FluxPipeline (FLUX.1 text to image) only`);
    // model_index.json says [null, null] for a component the pipeline was saved without.
    const declaredAbsent = (name: string) => Array.isArray(index?.[name]) && (index[name] as unknown[]).every((v) => v === null);
    const declared = !(declaredAbsent('text_encoder') && declaredAbsent('text_encoder_2'));
    encoders = declared && (await anyDir(dir, ['text_encoder', 'text_encoder_2', 'tokenizer', 'tokenizer_2'])) ? 'present' : 'absent';
    graphs = {
      clip: encoders === 'present' ? 'text_encoder/model.onnx' : null,
      t5: encoders === 'present' ? 'text_encoder_2/model.onnx' : null,
      transformer: 'transformer/model.onnx',
      vaeDecoder: 'vae_decoder/model.onnx',
    };
    schedulerJson = await reader.readJson('scheduler/scheduler_config.json', true);
    transformerConfig = await reader.readJson('transformer/config.json', false);
    vaeConfig = await reader.readJson('vae_decoder/config.json', false);
  } else {
    encoders = (await anyDir(dir, ['clip.opt', 't5.opt', 'tokenizer', 'tokenizer_2'])) ? 'present' : 'absent';
    graphs = {
      clip: encoders === 'present' ? 'clip.opt/model.onnx' : null,
      t5: encoders === 'present' ? 't5.opt/model.onnx' : null,
      transformer: await bflTransformer(dir, problems),
      vaeDecoder: 'vae.opt/model.onnx',
    };
  }

  const clip = graphs.clip ? await graph(graphs.clip) : null;
  const t5 = graphs.t5 ? await graph(graphs.t5) : null;
  const transformer = graphs.transformer ? await graph(graphs.transformer) : null;
  const vae = await graph(graphs.vaeDecoder);
  const tokenizers = encoders === 'present' ? await tokenizerFiles(dir, layout, problems) : null;

  const io = {
    clip: clip && { inputIds: pickInput(clip, ['input_ids'], graphs.clip!, problems), pooled: pickOutput(clip, ['pooler_output', 'pooled_embeddings', 'text_embeds'], graphs.clip!, problems, false) },
    t5: t5 && { inputIds: pickInput(t5, ['input_ids'], graphs.t5!, problems), hiddenStates: pickOutput(t5, ['last_hidden_state', 'text_embeddings'], graphs.t5!, problems, true) },
    transformer: transformer ? transformerIo(transformer, graphs.transformer, problems) : null,
    vae: vae && { latent: pickInput(vae, ['latent_sample', 'latent'], graphs.vaeDecoder, problems), image: pickOutput(vae, ['sample', 'images'], graphs.vaeDecoder, problems, true) },
  };

  const variant: FluxVariant = io.transformer?.guidance ? 'dev' : 'schnell';
  if (transformerConfig && io.transformer && typeof transformerConfig.guidance_embeds === 'boolean' && transformerConfig.guidance_embeds !== (variant === 'dev')) {
    problems.push(`transformer/config.json says guidance_embeds ${transformerConfig.guidance_embeds}, but ${graphs.transformer} ${variant === 'dev' ? 'takes' : 'takes no'} guidance input`);
  }

  let scheduler: FlowMatchConfig | null = null;
  try {
    scheduler = parseFlowMatchConfig(schedulerJson ?? (variant === 'dev' ? FLUX_DEV_SCHEDULER : FLUX_SCHNELL_SCHEDULER));
  } catch (err) {
    if (!(err instanceof FlowMatchConfigError)) throw err;
    problems.push(`scheduler/scheduler_config.json: ${err.message}`);
  }

  const vaeFactors = { ...FLUX_VAE };
  for (const [key, field] of [['scaling_factor', 'scalingFactor'], ['shift_factor', 'shiftFactor']] as const) {
    if (!vaeConfig || !(key in vaeConfig) || vaeConfig[key] === null) continue;
    const v = vaeConfig[key];
    if (typeof v === 'number' && Number.isFinite(v) && (key === 'shift_factor' || v > 0)) vaeFactors[field] = v;
    else problems.push(`vae_decoder/config.json: ${key} must be a ${key === 'scaling_factor' ? 'positive ' : ''}number`);
  }
  const vaeChannels = vae && io.vae ? fixedDim(vae.inputs.find((v) => v.name === io.vae!.latent), 1) : null;
  if (vaeChannels !== null && vaeChannels !== LATENT_CHANNELS) problems.push(`${graphs.vaeDecoder} takes ${vaeChannels} latent channels, not FLUX's ${LATENT_CHANNELS}`);

  // Widths and lengths the graphs agree on.
  const transformerInput = (name: string | undefined) => transformer?.inputs.find((v) => v.name === name);
  const configNumber = (key: string) => (typeof transformerConfig?.[key] === 'number' ? (transformerConfig[key] as number) : null);
  const jointAttentionDim = fixedDim(transformerInput(io.transformer?.encoderHiddenStates), 2) ?? configNumber('joint_attention_dim');
  const pooledProjectionDim = fixedDim(transformerInput(io.transformer?.pooledProjections), 1) ?? configNumber('pooled_projection_dim');
  const t5Length = t5 && io.t5 ? fixedDim(t5.inputs.find((v) => v.name === io.t5!.inputIds), 1) : null;
  const transformerLength = fixedDim(transformerInput(io.transformer?.encoderHiddenStates), 1);
  if (t5Length !== null && transformerLength !== null && t5Length !== transformerLength) {
    problems.push(`${graphs.t5} takes ${t5Length} tokens, but ${graphs.transformer} takes ${transformerLength} text states`);
  }
  const t5Width = t5 && io.t5 ? fixedDim(t5.outputs.find((v) => v.name === io.t5!.hiddenStates), 2) : null;
  if (t5Width !== null && jointAttentionDim !== null && t5Width !== jointAttentionDim) {
    problems.push(`${graphs.t5} makes states ${t5Width} wide, but ${graphs.transformer} takes ${jointAttentionDim}`);
  }
  const clipWidth = clip && io.clip ? fixedDim(clip.outputs.find((v) => v.name === io.clip!.pooled), 1) : null;
  if (clipWidth !== null && pooledProjectionDim !== null && clipWidth !== pooledProjectionDim) {
    problems.push(`${graphs.clip} pools to ${clipWidth} values, but ${graphs.transformer} takes ${pooledProjectionDim}`);
  }

  if (problems.length || !scheduler || !io.transformer || !io.vae) throw new FluxFolderError(problems);
  return {
    dir,
    layout,
    variant,
    graphs,
    io: { clip: io.clip, t5: io.t5, transformer: io.transformer, vae: io.vae },
    tokenizers,
    scheduler,
    vae: vaeFactors,
    maxSequenceLength: t5Length ?? transformerLength ?? SEQUENCE_LENGTH[variant],
    jointAttentionDim,
    pooledProjectionDim,
    defaults: { ...DEFAULTS[variant] },
    summaries,
    files: await listFiles(dir, layout),
  };
}

/**
 * The BFL layout's transformer: `transformer.opt/<precision>/model.onnx` (or a graph directly in
 * transformer.opt/), fp16 or fp32 first, else the first that onnxruntime can run. When none can
 * be, every precision's reasons are listed, so the message says what to fetch instead; then ''.
 */
async function bflTransformer(dir: string, problems: string[]): Promise<string> {
  const root = path.join(dir, 'transformer.opt');
  if (await isFile(path.join(root, 'model.onnx'))) return 'transformer.opt/model.onnx';
  const precisions: string[] = [];
  for (const e of await fs.readdir(root, { withFileTypes: true })) if (e.isDirectory() && (await isFile(path.join(root, e.name, 'model.onnx')))) precisions.push(e.name);
  const ordered = [...PRECISION_ORDER.filter((p) => precisions.includes(p)), ...precisions.filter((p) => !PRECISION_ORDER.includes(p)).sort()];
  if (!ordered.length) problems.push('missing transformer.opt/<precision>/model.onnx');
  const reasons: string[] = [];
  for (const p of ordered) {
    const rel = `transformer.opt/${p}/model.onnx`;
    try {
      const found = unrunnableReasons(rel, await summarizeGraph(path.join(dir, rel)));
      if (!found.length) return rel;
      reasons.push(...found);
    } catch (err) {
      if (!(err instanceof GraphSummaryError)) throw err;
      reasons.push(`${rel} is not a well-formed ONNX file`);
    }
  }
  problems.push(...reasons);
  return '';
}

/** CLIP's tokenizer (tokenizer.json, or vocab.json with merges.txt) and T5's tokenizer.json. */
async function tokenizerFiles(dir: string, layout: FluxLayout, problems: string[]): Promise<{ clip: TokenizerFiles; t5: string }> {
  const offline = layout === 'bfl' ? ' (the BFL export ships none, and Kiln runs offline: copy it from the FLUX.1 repository)' : '';
  const clip: TokenizerFiles = { dir: path.join(dir, 'tokenizer'), tokenizerJson: null, vocab: null, merges: null };
  if (await isFile(path.join(dir, 'tokenizer/tokenizer.json'))) clip.tokenizerJson = path.join(dir, 'tokenizer/tokenizer.json');
  else if ((await isFile(path.join(dir, 'tokenizer/vocab.json'))) && (await isFile(path.join(dir, 'tokenizer/merges.txt')))) {
    Object.assign(clip, { vocab: path.join(dir, 'tokenizer/vocab.json'), merges: path.join(dir, 'tokenizer/merges.txt') });
  } else problems.push(`missing tokenizer/tokenizer.json (or vocab.json and merges.txt), CLIP's tokenizer${offline}`);
  const t5 = path.join(dir, 'tokenizer_2/tokenizer.json');
  if (!(await isFile(t5))) {
    const spiece = await isFile(path.join(dir, 'tokenizer_2/spiece.model'));
    problems.push(`missing tokenizer_2/tokenizer.json, T5's tokenizer${spiece ? ' (Kiln reads tokenizer.json, not spiece.model)' : offline}`);
  }
  return { clip, t5 };
}

function pickInput(summary: GraphSummary, names: string[], graph: string, problems: string[]): string {
  const found = names.find((n) => summary.inputs.some((v) => v.name === n));
  if (!found) problems.push(`${graph} has no input ${names.join(' or ')} (it has ${summary.inputs.map((v) => v.name).join(', ')})`);
  return found ?? names[0]!;
}

/** The output of one of `names`, else (when `firstOtherwise`) the graph's first output. */
function pickOutput(summary: GraphSummary, names: string[], graph: string, problems: string[], firstOtherwise: boolean): string {
  const found = names.find((n) => summary.outputs.some((v) => v.name === n)) ?? (firstOtherwise ? summary.outputs[0]?.name : undefined);
  if (!found) problems.push(`${graph} has no output ${names.join(' or ')} (it has ${summary.outputs.map((v) => v.name).join(', ')})`);
  return found ?? names[0]!;
}

const TRANSFORMER_INPUTS = ['hidden_states', 'encoder_hidden_states', 'pooled_projections', 'timestep', 'img_ids', 'txt_ids'] as const;

function transformerIo(summary: GraphSummary, graph: string, problems: string[]): FluxGraphIo['transformer'] {
  const names = summary.inputs.map((v) => v.name);
  const missing = TRANSFORMER_INPUTS.filter((n) => !names.includes(n));
  if (missing.length) problems.push(`${graph} has no input ${missing.join(', ')} (it has ${names.join(', ')})`);
  const extra = names.filter((n) => !(TRANSFORMER_INPUTS as readonly string[]).includes(n) && n !== 'guidance');
  if (extra.length) problems.push(`${graph} takes inputs this pipeline does not provide: ${extra.join(', ')}`);
  const packed = fixedDim(summary.inputs.find((v) => v.name === 'hidden_states'), 2);
  if (packed !== null && packed !== PACKED_WIDTH) {
    problems.push(`${graph} takes ${packed} channels per token, not FLUX.1's ${PACKED_WIDTH} (Fill, Canny, Depth and Kontext models are not text to image)`);
  }
  return {
    hiddenStates: 'hidden_states',
    encoderHiddenStates: 'encoder_hidden_states',
    pooledProjections: 'pooled_projections',
    timestep: 'timestep',
    imgIds: 'img_ids',
    txtIds: 'txt_ids',
    guidance: names.includes('guidance') ? 'guidance' : null,
    output: pickOutput(summary, ['out_hidden_states', 'latent', 'sample'], graph, problems, true),
  };
}

/** A dimension's fixed size, or null where it is free or unknown. */
function fixedDim(value: GraphValue | undefined, axis: number): number | null {
  const d = value?.shape?.[axis];
  return typeof d === 'number' && d > 0 ? d : null;
}

async function listFiles(dir: string, layout: FluxLayout): Promise<string[]> {
  const files = (await isFile(path.join(dir, 'model_index.json'))) ? ['model_index.json'] : [];
  for (const folder of layout === 'optimum' ? OPTIMUM_PARTS : BFL_PARTS) {
    const entries = await fs.readdir(path.join(dir, folder), { recursive: true, withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isFile()) files.push(path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
  }
  return files.sort();
}
