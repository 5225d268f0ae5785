import fs from 'node:fs/promises';
import { ModelFileError, quoteName } from './model-file-error.js';
import { parseSafetensors, type SafetensorsTensor, tensorAsFloat32 } from './safetensors.js';

/**
 * LoRA adapters in safetensors, in the key formats people share them in:
 *
 * - kohya (sd-scripts, most community LoRAs): `lora_unet_<module_path_with_underscores>.lora_down.weight`,
 *   `.lora_up.weight`, `.alpha`; `lora_transformer_` too; `lora_te_`, `lora_te1_`, `lora_te2_`,
 *   `lora_te3_` for text encoders. Module paths are diffusers' (SD 1.x), the original UNet's
 *   (SDXL: `input_blocks_4_1_…`) or Black Forest Labs' (FLUX: `double_blocks_0_img_attn_qkv`).
 * - diffusers / PEFT: `unet.<dotted.module.path>.lora_A.weight` and `.lora_B.weight` (optionally
 *   `.alpha`), the older `….lora.down.weight` / `….lora.up.weight`, and attention processors'
 *   `….processor.to_q_lora.down.weight`; `transformer.` for FLUX, `text_encoder.`,
 *   `text_encoder_2.` for text encoders, `diffusion_model.` (ComfyUI's FLUX saves, with
 *   `.lora_down.weight` / `.lora_up.weight` too), `base_model.model.` (a bare PEFT save) for no
 *   component.
 * - XLabs (FLUX): `double_blocks.0.processor.qkv_lora1.down.weight`, `….up.weight` (`qkv_lora1`,
 *   `proj_lora1` for the image stream, `…2` for the text stream), no component.
 * - Kiln's own, for the built-in model: the PEFT form with component `denoiser`, e.g.
 *   `denoiser.layer1.lora_A.weight` [rank, in], `denoiser.layer1.lora_B.weight` [out, rank],
 *   `denoiser.layer1.alpha` (a scalar).
 *
 * Each module adds (alpha / rank) · up · down to its base weight, where down is [rank, in, …]
 * and up is [out, rank, 1, 1] (or [out, rank]); without an alpha, alpha = rank.
 */

/** Components named by key prefixes, in both spellings. */
const KOHYA_COMPONENTS: Record<string, string> = {
  unet: 'unet',
  transformer: 'transformer',
  te: 'text_encoder',
  te1: 'text_encoder',
  te2: 'text_encoder_2',
  te3: 'text_encoder_3',
  denoiser: 'denoiser',
};
const DOTTED_COMPONENTS = new Set(['unet', 'transformer', 'diffusion_model', 'text_encoder', 'text_encoder_2', 'text_encoder_3', 'denoiser']);

export interface LoraTensor {
  shape: number[];
  data: Float32Array;
}

export interface LoraModule {
  /** The adapter's key of its down matrix, for messages. */
  key: string;
  /** The module's path as the adapter spells it: dotted, or with underscores for kohya keys. */
  path: string;
  naming: 'dotted' | 'underscored';
  /** The model part it adapts ('unet', 'text_encoder', 'denoiser', …), or null when its keys do not say. */
  component: string | null;
  /** [rank, in, …] */
  down: LoraTensor;
  /** [out, rank, 1, …] */
  up: LoraTensor;
  rank: number;
  alpha: number;
}

export interface LoraAdapter {
  modules: LoraModule[];
  metadata: Record<string, string>;
}

type Part = 'down' | 'up' | 'alpha';

interface ParsedKey {
  component: string | null;
  path: string;
  naming: LoraModule['naming'];
  part: Part;
}

const KOHYA_KEY = /^lora_(unet|transformer|te1|te2|te3|te|denoiser)_(.+)\.(lora_down\.weight|lora_up\.weight|alpha)$/;
const PEFT_KEY = /^(.+)\.(lora_A\.weight|lora_B\.weight|lora\.down\.weight|lora\.up\.weight|lora_down\.weight|lora_up\.weight|alpha)$/;
const XLABS_KEY = /^(?:(diffusion_model)\.)?((?:double|single)_blocks\.\d+\.processor\.(?:qkv|proj)_lora[12]?)\.(down|up)\.weight$/;
const PROCESSOR_KEY = /^(.+)\.processor\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight$/;
const PARTS: Record<string, Part> = {
  'lora_down.weight': 'down',
  'lora_up.weight': 'up',
  'lora_A.weight': 'down',
  'lora_B.weight': 'up',
  'lora.down.weight': 'down',
  'lora.up.weight': 'up',
  down: 'down',
  up: 'up',
  alpha: 'alpha',
};

const refuse = (problem: string) => new ModelFileError(`Not a LoRA adapter Kiln can use: ${problem}.`);

export async function readLoraAdapter(file: string): Promise<LoraAdapter> {
  return parseLoraAdapter(new Uint8Array(await fs.readFile(file)));
}

/** Validates the safetensors container, then reads every module's down, up and alpha. */
export function parseLoraAdapter(bytes: Uint8Array): LoraAdapter {
  const header = parseSafetensors(bytes);
  const groups = new Map<string, ParsedKey & { tensors: Partial<Record<Part, SafetensorsTensor>> }>();
  for (const t of header.tensors) {
    const key = parseKey(t.name);
    const id = `${key.component ?? ''}\0${key.naming}\0${key.path}`;
    const group = groups.get(id) ?? { ...key, tensors: {} };
    if (group.tensors[key.part]) throw refuse(`two tensors hold the ${key.part} of module ${quoteName(key.path)}`);
    group.tensors[key.part] = t;
    groups.set(id, group);
  }
  if (!groups.size) throw refuse('it holds no tensors');
  const modules = [...groups.values()].map((g) => toModule(bytes, g, g.tensors));
  return { modules, metadata: header.metadata };
}

function parseKey(name: string): ParsedKey {
  const kohya = KOHYA_KEY.exec(name);
  if (kohya) return { component: KOHYA_COMPONENTS[kohya[1]!]!, path: kohya[2]!, naming: 'underscored', part: PARTS[kohya[3]!]! };
  const xlabs = XLABS_KEY.exec(name);
  if (xlabs) return { component: xlabs[1] ?? null, path: xlabs[2]!, naming: 'dotted', part: PARTS[xlabs[3]!]! };
  const processor = PROCESSOR_KEY.exec(name);
  const peft = PEFT_KEY.exec(name);
  let stem: string;
  let part: Part;
  if (processor) {
    stem = `${processor[1]}.${processor[2] === 'to_out' ? 'to_out.0' : processor[2]}`;
    part = PARTS[processor[3]!]!;
  } else if (peft) {
    stem = peft[1]!;
    part = PARTS[peft[2]!]!;
  } else {
    throw refuse(
      `its tensor ${quoteName(name)} is not a kohya (lora_down, lora_up, alpha), XLabs (processor.qkv_lora1.down) or diffusers/PEFT (lora_A, lora_B, lora.down, lora.up) key; LoHa, LoKr and DoRA adapters are not supported`,
    );
  }
  if (stem.startsWith('base_model.model.')) return { component: null, path: stem.slice('base_model.model.'.length), naming: 'dotted', part };
  const dot = stem.indexOf('.');
  const first = dot < 0 ? '' : stem.slice(0, dot);
  if (DOTTED_COMPONENTS.has(first)) return { component: first, path: stem.slice(dot + 1), naming: 'dotted', part };
  return { component: null, path: stem, naming: 'dotted', part };
}

function toModule(bytes: Uint8Array, key: ParsedKey, tensors: Partial<Record<Part, SafetensorsTensor>>): LoraModule {
  const what = `module ${quoteName(key.path)}`;
  if (!tensors.down || !tensors.up) throw refuse(`${what} has no ${tensors.down ? 'up' : 'down'} matrix`);
  const read = (t: SafetensorsTensor): LoraTensor => {
    if (!['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) throw refuse(`tensor ${quoteName(t.name)} is ${t.dtype}, not floating point`);
    const data = tensorAsFloat32(bytes, t);
    if (!data.every(Number.isFinite)) throw refuse(`tensor ${quoteName(t.name)} holds NaN or infinite values`);
    return { shape: t.shape, data };
  };
  const down = read(tensors.down);
  const up = read(tensors.up);
  const rank = down.shape[0] ?? 0;
  if (down.shape.length < 2 || rank < 1) throw refuse(`${what} has a down matrix of shape [${down.shape.join(', ')}], not [rank, in, …]`);
  if (up.shape.length < 2 || up.shape[1] !== rank || up.shape.slice(2).some((d) => d !== 1)) {
    throw refuse(`${what} has an up matrix of shape [${up.shape.join(', ')}], not [out, ${rank}] for its rank ${rank}`);
  }
  let alpha = rank;
  if (tensors.alpha) {
    const a = read(tensors.alpha);
    if (a.data.length !== 1) throw refuse(`${what} has an alpha that is not a single number`);
    alpha = a.data[0]!;
  }
  return { key: tensors.down.name, path: key.path, naming: key.naming, component: key.component, down, up, rank, alpha };
}
