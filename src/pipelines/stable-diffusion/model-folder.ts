import fs from 'node:fs/promises';
import path from 'node:path';
import { KilnError } from '../../errors.js';
import type { TokenizerFiles } from '../clip-tokenizer.js';
import { FolderReader } from '../folder-reader.js';
import { resolveSchedulerConfig, type SchedulerName, schedulerForClass, SchedulerConfigError } from './schedulers/scheduler-config.js';

/**
 * The two folder layouts a `stable-diffusion-onnx` model comes in, recognised from its files.
 *
 * `optimum`: Hugging Face Optimum's ONNX export (and diffusers' older ONNX script), for SD 1.x,
 * SD 2.x, SD-Turbo and LCM models: `model_index.json`, `text_encoder/model.onnx`,
 * `unet/model.onnx`, `vae_decoder/model.onnx`, `tokenizer/` (`tokenizer.json`, or `vocab.json`
 * with `merges.txt`) and `scheduler/scheduler_config.json`; `vae_decoder/config.json` and
 * `unet/config.json` are read when present. Graphs are fp32 or fp16.
 *
 * `ort-turbo`: the ONNX Runtime team's SD-Turbo export that its JavaScript demos load
 * (onnxruntime-inference-examples js/sd-turbo, the WebNN developer preview's sd-turbo): only
 * the three graph folders, `text_encoder/`, `unet/`, `vae_decoder/`, each with `model.onnx`
 * (the WebNN build names its text encoder and UNet `model_layernorm.onnx`), no model_index.json
 * and no scheduler config. Found in the demos' code (their feeds and freeDimensionOverrides):
 *   text encoder  `input_ids` int32 [batch_size, sequence_length] → `last_hidden_state` [.., .., 1024]
 *   UNet          `sample` [batch_size, 4, height, width], `timestep` int64 [1] (float16 in the
 *                 WebNN build), `encoder_hidden_states` [batch_size, 77, 1024] → `out_sample`
 *   VAE decoder   `latent_sample` [batch_size, 4, height_latent, width_latent] → `sample` [.., 3, H, W]
 * with fp16 weights, and float16 or float32 at the boundaries depending on the build (the WebGPU
 * demo feeds float32 latents, the WebNN one float16), so Kiln reads each graph's input types
 * from its session instead of assuming them. The demos fetch the tokenizer from the Hub at run
 * time; Kiln works offline, so the folder must also carry SD-Turbo's `tokenizer/` files. What
 * the layout leaves out is SD-Turbo's: Euler with trailing spacing (SD_TURBO_SCHEDULER below),
 * scaling factor 0.18215, one step, no guidance, 512×512. (Folders the same team published with
 * a model_index.json, like schmuell/sd-turbo-ort-web, are read as the `optimum` layout.)
 */
export type StableDiffusionLayout = 'optimum' | 'ort-turbo';

export interface StableDiffusionDefaults {
  steps: number;
  guidanceScale: number;
  width: number;
  height: number;
  scheduler: SchedulerName;
}

export interface StableDiffusionFolder {
  dir: string;
  layout: StableDiffusionLayout;
  /** Graph files, relative to `dir`. */
  graphs: { textEncoder: string; unet: string; vaeDecoder: string };
  tokenizer: TokenizerFiles;
  /** scheduler_config.json as parsed (SD-Turbo's for the ort-turbo layout when the folder has none). */
  schedulerConfig: Record<string, unknown>;
  /** The VAE's latent scaling factor (`scaling_factor`). */
  vaeScalingFactor: number;
  /** The UNet's guidance-embedding width (`time_cond_proj_dim`, LCM-distilled UNets), if its config says. */
  timeCondProjDim: number | null;
  defaults: StableDiffusionDefaults;
  /** Every file of the model's parts, relative to `dir`, sorted. */
  files: string[];
}

/** A folder Kiln will not run; `problems` says each thing missing or wrong, relative to the folder. */
export class StableDiffusionFolderError extends KilnError {
  constructor(readonly problems: string[]) {
    super('BAD_USER_INPUT', `not a usable Stable Diffusion ONNX folder: ${problems.join('; ')}`);
    this.name = 'StableDiffusionFolderError';
  }
}

/** SD-Turbo's scheduler_config.json, for folders in the ort-turbo layout that carry none. */
export const SD_TURBO_SCHEDULER = {
  _class_name: 'EulerDiscreteScheduler',
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  steps_offset: 1,
  timestep_spacing: 'trailing',
  trained_betas: null,
};

const SD1_SCALING_FACTOR = 0.18215;
const VAE_FACTOR = 8;
const GRAPH = 'model.onnx';
const WEBNN_GRAPH = 'model_layernorm.onnx';
/** The folders of a model's parts, in both layouts. */
export const PART_FOLDERS = ['text_encoder', 'unet', 'vae_decoder', 'tokenizer', 'scheduler'];

/**
 * Recognises the folder's layout, checks it has everything a generation needs, and reads what
 * the model says about itself. Throws StableDiffusionFolderError naming every missing or
 * unreadable part. Reads only small files (configs, tokenizer, directory listings), so a model
 * registry can call it at registration time.
 */
export async function inspectStableDiffusionFolder(dir: string): Promise<StableDiffusionFolder> {
  const reader = new FolderReader(dir);
  const { problems } = reader;
  const exists = (rel: string) => reader.exists(rel);
  const readJson = (rel: string, required: boolean) => reader.readJson(rel, required);

  const index = await readJson('model_index.json', false);
  const hasIndex = await exists('model_index.json');
  const layout: StableDiffusionLayout = hasIndex ? 'optimum' : 'ort-turbo';
  if (!hasIndex && !(await Promise.all(['text_encoder', 'unet', 'vae_decoder'].map((d) => fs.stat(path.join(dir, d)).catch(() => null)))).some(Boolean)) {
    throw new StableDiffusionFolderError([
      'found neither model_index.json (a Hugging Face Optimum export) nor text_encoder/, unet/ and vae_decoder/ graph folders (an ONNX Runtime SD-Turbo export)',
    ]);
  }
  if (index && (String(index._class_name ?? '').includes('XL') || 'text_encoder_2' in index)) {
    throw new StableDiffusionFolderError(['this is a Stable Diffusion XL model (two text encoders), which the stable-diffusion-xl-onnx pipeline runs, not stable-diffusion-onnx']);
  }

  const graph = async (part: string) => {
    if (await exists(`${part}/${GRAPH}`)) return `${part}/${GRAPH}`;
    if (layout === 'ort-turbo' && part !== 'vae_decoder' && (await exists(`${part}/${WEBNN_GRAPH}`))) return `${part}/${WEBNN_GRAPH}`;
    problems.push(`missing ${part}/${GRAPH}`);
    return `${part}/${GRAPH}`;
  };
  const graphs = { textEncoder: await graph('text_encoder'), unet: await graph('unet'), vaeDecoder: await graph('vae_decoder') };

  const tokenizer = await reader.tokenizer('tokenizer', layout === 'ort-turbo' ? ': Kiln runs offline, so the CLIP tokenizer files must be in the folder' : '');

  const schedulerFile = await readJson('scheduler/scheduler_config.json', layout === 'optimum');
  const schedulerConfig: Record<string, unknown> = schedulerFile ?? (layout === 'ort-turbo' ? SD_TURBO_SCHEDULER : {});
  const scheduler = schedulerForClass(schedulerConfig._class_name);
  if (schedulerFile || layout === 'ort-turbo') {
    try {
      resolveSchedulerConfig(schedulerConfig, scheduler);
    } catch (err) {
      if (!(err instanceof SchedulerConfigError)) throw err;
      problems.push(`scheduler/scheduler_config.json: ${err.message}`);
    }
  }

  const vaeConfig = await readJson('vae_decoder/config.json', false);
  let vaeScalingFactor = SD1_SCALING_FACTOR;
  if (vaeConfig && 'scaling_factor' in vaeConfig) {
    if (typeof vaeConfig.scaling_factor === 'number' && vaeConfig.scaling_factor > 0) vaeScalingFactor = vaeConfig.scaling_factor;
    else problems.push('vae_decoder/config.json: scaling_factor must be a positive number');
  }
  const unetConfig = await readJson('unet/config.json', false);
  const timeCondProjDim = typeof unetConfig?.time_cond_proj_dim === 'number' ? unetConfig.time_cond_proj_dim : null;

  if (problems.length) throw new StableDiffusionFolderError(problems);

  const turbo = layout === 'ort-turbo' || /turbo/i.test(String(index?._name_or_path ?? ''));
  const side = typeof unetConfig?.sample_size === 'number' ? unetConfig.sample_size * VAE_FACTOR : 512;
  const defaults: StableDiffusionDefaults = {
    // Distilled models are made for few steps: SD-Turbo one without guidance, LCM four with
    // guidance fed to the UNet as an embedding (or none where the UNet takes no embedding).
    steps: turbo ? 1 : scheduler === 'lcm' ? 4 : 30,
    guidanceScale: turbo ? 0 : scheduler === 'lcm' ? (timeCondProjDim ? 8 : 1) : 7.5,
    width: side,
    height: side,
    scheduler,
  };
  return { dir, layout, graphs, tokenizer, schedulerConfig, vaeScalingFactor, timeCondProjDim, defaults, files: await reader.listFiles(PART_FOLDERS, hasIndex ? ['model_index.json'] : []) };
}
