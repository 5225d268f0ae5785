import fs from 'node:fs/promises';
import path from 'node:path';
import { KilnError } from '../../errors.js';
import type { TokenizerFiles } from '../clip-tokenizer.js';
import { FolderReader } from '../folder-reader.js';
import { resolveSchedulerConfig, SchedulerConfigError, type SchedulerName, schedulerForClass } from '../stable-diffusion/schedulers/scheduler-config.js';

/**
 * A Stable Diffusion XL model (SDXL base, SDXL-Turbo, fine-tunes and LCM-SDXL) in Hugging Face
 * Optimum's ONNX layout: `model_index.json` naming StableDiffusionXLPipeline,
 * `text_encoder/model.onnx` (CLIP ViT-L), `text_encoder_2/model.onnx` (OpenCLIP ViT-bigG, with
 * the projection), `tokenizer/` and `tokenizer_2/`, `unet/model.onnx`, `vae_decoder/model.onnx`
 * and `scheduler/scheduler_config.json`; each part's `config.json` is read where present.
 *
 * Optimum exports both text encoders with every layer's hidden states (`hidden_states.0` …
 * `hidden_states.N`, besides `last_hidden_state` and the pooled `pooler_output` or
 * `text_embeds`), and the UNet with SDXL's added conditioning (`text_embeds`, `time_ids`).
 * A folder whose model_index.json gives the text encoders and tokenizers as `[null, null]`
 * (diffusers' way of leaving a component out) has none: its prompts come as embeddings.
 */
export interface StableDiffusionXLFolder {
  dir: string;
  /** Graph files, relative to `dir`. */
  graphs: { unet: string; vaeDecoder: string };
  /** The two text encoders and their tokenizers, or null where the model ships without them. */
  textEncoders: { graphs: [string, string]; tokenizers: [TokenizerFiles, TokenizerFiles] } | null;
  /** scheduler_config.json as parsed. */
  schedulerConfig: Record<string, unknown>;
  /** model_index.json's `force_zeros_for_empty_prompt`: no negative prompt means zero embeddings, not the encoded "". */
  forceZerosForEmptyPrompt: boolean;
  vae: {
    /** The latent scaling factor (`scaling_factor`, 0.13025 for SDXL). */
    scalingFactor: number;
    /** Run the decoder in float32 even when its graph is float16 (`force_upcast`). */
    forceUpcast: boolean;
  };
  unet: {
    /** The guidance-embedding width of LCM-distilled UNets (`time_cond_proj_dim`), if its config says. */
    timeCondProjDim: number | null;
    /** Width of the prompt embeddings (`cross_attention_dim`), if its config says. */
    crossAttentionDim: number | null;
    /** Width of the pooled prompt embedding the added conditioning takes, if its config says. */
    pooledDim: number | null;
  };
  /** Image sides must be multiples of this: 8 per latent pixel times the UNet's downsampling. */
  sizeMultiple: number;
  /** SDXL-Turbo (named so, or with trailing timestep spacing): one step without guidance. */
  turbo: boolean;
  defaults: StableDiffusionXLDefaults;
  /** Every file of the model's parts, relative to `dir`, sorted. */
  files: string[];
}

export interface StableDiffusionXLDefaults {
  steps: number;
  guidanceScale: number;
  width: number;
  height: number;
  scheduler: SchedulerName;
}

/** A folder Kiln will not run as SDXL; `problems` says each thing missing or wrong, relative to the folder. */
export class StableDiffusionXLFolderError extends KilnError {
  constructor(readonly problems: string[]) {
    super('BAD_USER_INPUT', `not a usable Stable Diffusion XL ONNX folder: ${problems.join('; ')}`);
    this.name = 'StableDiffusionXLFolderError';
  }
}

const PIPELINE_CLASSES = ['StableDiffusionXLPipeline', 'ORTStableDiffusionXLPipeline'];
// Pixels per latent pixel (kept here rather than imported, so inspecting a folder loads no onnxruntime).
const VAE_FACTOR = 8;
const GRAPH = 'model.onnx';
const TEXT_PARTS = ['text_encoder', 'text_encoder_2', 'tokenizer', 'tokenizer_2'] as const;
export const PART_FOLDERS = ['text_encoder', 'text_encoder_2', 'tokenizer', 'tokenizer_2', 'unet', 'vae_decoder', 'scheduler'];
// The values SDXL's own VAE config has, for folders that carry none.
const SDXL_SCALING_FACTOR = 0.13025;
const SDXL_ADDED_TIME_IDS = 6;

type Json = Record<string, unknown>;

/**
 * Whether the folder holds an SDXL model, from its model_index.json alone (cheap: for choosing
 * a pipeline); inspectStableDiffusionXLFolder then says whether Kiln can run it.
 */
export async function isStableDiffusionXLFolder(dir: string): Promise<boolean> {
  try {
    const index: unknown = JSON.parse(await fs.readFile(path.join(dir, 'model_index.json'), 'utf8'));
    return !!index && typeof index === 'object' && /StableDiffusionXL/.test(String((index as Json)._class_name));
  } catch {
    return false;
  }
}

/**
 * Checks the folder has everything an SDXL generation needs and reads what the model says about
 * itself. Throws StableDiffusionXLFolderError naming every missing or unreadable part. Reads only
 * small files (configs, tokenizer names, listings), so a model registry can call it at
 * registration time.
 */
export async function inspectStableDiffusionXLFolder(dir: string): Promise<StableDiffusionXLFolder> {
  const reader = new FolderReader(dir);
  const { problems } = reader;
  const index = await reader.readJson('model_index.json', false);
  if (!index && !(await reader.exists('model_index.json'))) {
    problems.push('missing model_index.json (an Optimum SDXL export names StableDiffusionXLPipeline there)');
  }
  const className = String(index?._class_name ?? '');
  if (index && !PIPELINE_CLASSES.includes(className)) {
    problems.push(
      /StableDiffusionXL/.test(className)
        ? `model_index.json names ${className}: Kiln runs the text-to-image StableDiffusionXLPipeline, not image-to-image or inpainting models (such as SDXL's refiner)`
        : `model_index.json names ${JSON.stringify(className || null)}, not StableDiffusionXLPipeline`,
    );
  }

  const graph = async (part: string) => {
    const rel = `${part}/${GRAPH}`;
    if (!(await reader.exists(rel))) problems.push(`missing ${rel}`);
    return rel;
  };
  const graphs = { unet: await graph('unet'), vaeDecoder: await graph('vae_decoder') };

  // diffusers writes a component that was left out as [null, null].
  const leftOut = (part: string) => !!index && part in index && (index[part] === null || (Array.isArray(index[part]) && index[part].every((v) => v === null)));
  const omitted = TEXT_PARTS.filter(leftOut);
  let textEncoders: StableDiffusionXLFolder['textEncoders'] = null;
  if (omitted.length && omitted.length < TEXT_PARTS.length) {
    problems.push(`model_index.json leaves out ${omitted.join(', ')} but not ${TEXT_PARTS.filter((p) => !omitted.includes(p)).join(', ')}: Kiln needs both text encoders and both tokenizers, or none (prompts then come as embeddings)`);
  } else if (!omitted.length) {
    textEncoders = {
      graphs: [await graph('text_encoder'), await graph('text_encoder_2')],
      tokenizers: [await reader.tokenizer('tokenizer'), await reader.tokenizer('tokenizer_2')],
    };
  }

  const schedulerConfig = (await reader.readJson('scheduler/scheduler_config.json', true)) ?? {};
  const scheduler = schedulerForClass(schedulerConfig._class_name);
  if (Object.keys(schedulerConfig).length) {
    try {
      resolveSchedulerConfig(schedulerConfig, scheduler);
    } catch (err) {
      if (!(err instanceof SchedulerConfigError)) throw err;
      problems.push(`scheduler/scheduler_config.json: ${err.message}`);
    }
  }

  const vaeConfig = (await reader.readJson('vae_decoder/config.json', false)) ?? {};
  const scalingFactor = positive(vaeConfig, 'scaling_factor', 'vae_decoder/config.json', problems) ?? SDXL_SCALING_FACTOR;
  for (const key of ['latents_mean', 'latents_std', 'shift_factor']) {
    if (vaeConfig[key] !== undefined && vaeConfig[key] !== null) problems.push(`vae_decoder/config.json: ${key} is set, and Kiln's SDXL pipeline decodes with scaling_factor alone`);
  }
  // diffusers' AutoencoderKL upcasts unless its config says otherwise (SDXL's fp16-fix VAE does).
  const forceUpcast = vaeConfig.force_upcast !== false;

  const unetConfig = (await reader.readJson('unet/config.json', false)) ?? {};
  if (unetConfig.addition_embed_type !== undefined && unetConfig.addition_embed_type !== 'text_time') {
    problems.push(`unet/config.json: addition_embed_type is ${JSON.stringify(unetConfig.addition_embed_type)}, not "text_time": not an SDXL UNet`);
  }
  const timeCondProjDim = positive(unetConfig, 'time_cond_proj_dim', 'unet/config.json', problems);
  const crossAttentionDim = positive(unetConfig, 'cross_attention_dim', 'unet/config.json', problems);
  const timeEmbedDim = positive(unetConfig, 'addition_time_embed_dim', 'unet/config.json', problems);
  const addedDim = positive(unetConfig, 'projection_class_embeddings_input_dim', 'unet/config.json', problems);
  const pooledDim = timeEmbedDim !== null && addedDim !== null ? addedDim - SDXL_ADDED_TIME_IDS * timeEmbedDim : null;
  if (pooledDim !== null && pooledDim < 1) {
    problems.push(`unet/config.json: projection_class_embeddings_input_dim ${addedDim} leaves no room for a pooled prompt embedding beside ${SDXL_ADDED_TIME_IDS} time ids of ${timeEmbedDim} (an image-to-image UNet with an aesthetic score?)`);
  }
  const downBlocks = Array.isArray(unetConfig.down_block_types) ? unetConfig.down_block_types.length : 1;
  const sizeMultiple = VAE_FACTOR * 2 ** Math.max(0, downBlocks - 1);

  if (problems.length) throw new StableDiffusionXLFolderError(problems);

  const turbo = /turbo/i.test(String(index?._name_or_path ?? '')) || schedulerConfig.timestep_spacing === 'trailing';
  const sampleSize = positive(unetConfig, 'sample_size', 'unet/config.json', []);
  const side = sampleSize !== null ? sampleSize * VAE_FACTOR : turbo ? 512 : 1024;
  const lcm = scheduler === 'lcm';
  const defaults: StableDiffusionXLDefaults = {
    // SDXL-Turbo is distilled for one step without guidance (diffusers' model card: Euler,
    // trailing spacing); LCM-SDXL for four steps with guidance fed as an embedding.
    steps: turbo ? 1 : lcm ? 4 : 30,
    guidanceScale: turbo ? 0 : lcm ? (timeCondProjDim ? 8 : 1) : 5,
    width: side,
    height: side,
    scheduler: turbo ? 'euler' : scheduler,
  };
  return {
    dir,
    graphs,
    textEncoders,
    schedulerConfig,
    forceZerosForEmptyPrompt: index?.force_zeros_for_empty_prompt !== false,
    vae: { scalingFactor, forceUpcast },
    unet: { timeCondProjDim, crossAttentionDim, pooledDim },
    sizeMultiple,
    turbo,
    defaults,
    files: await reader.listFiles(PART_FOLDERS, ['model_index.json']),
  };
}

/** A config's positive number `key`, null where absent; a problem where it is something else. */
function positive(config: Json, key: string, file: string, problems: string[]): number | null {
  const v = config[key];
  if (v === undefined || v === null) return null;
  if (typeof v === 'number' && v > 0) return v;
  problems.push(`${file}: ${key} must be a positive number`);
  return null;
}
