import type { LoraModule } from './lora-adapter.js';

/**
 * The other names a LoRA module goes by. Kiln matches adapters to graphs in diffusers' module
 * names; adapters (and some graphs) use others:
 *
 * - FLUX in Black Forest Labs' own names (kohya's `lora_unet_double_blocks_0_img_attn_qkv`,
 *   ComfyUI's `diffusion_model.single_blocks.0.linear1`), where q, k and v are one fused `qkv`
 *   Linear and a single block's `linear1` is q, k, v and the MLP's input at once;
 * - XLabs' FLUX processors (`double_blocks.0.processor.qkv_lora1`);
 * - the original (LDM/SGM) UNet blocks kohya uses for SDXL (`input_blocks_4_1_…`), numbered by
 *   the UNet's layers per block;
 * - CLIP text encoders saved from the whole `CLIPTextModel` (`text_model.encoder…`) against a
 *   graph exported from its inner module (`encoder…`).
 *
 * A fused module is a list of parts: rows [start, start + rows) of the fused matrix are rows
 * [at, at + rows) of the diffusers module `path`, which has `of` rows in all.
 */

export interface NamePart {
  path: string;
  start: number;
  rows: number;
  at: number;
  of: number;
}

/** One place a module's up rows go: `rows` of them from `upStart`, into rows from `at` of the module named by `key`, which must have `of` rows. */
export interface TargetPart {
  /** `dotted:<path>` or `underscored:<path>`, as the weight index keys modules. */
  key: string;
  upStart: number;
  rows: number;
  at: number;
  of: number;
}

type Fused = string | string[];

const DOUBLE: Record<string, Fused> = {
  'img_attn.qkv': ['attn.to_q', 'attn.to_k', 'attn.to_v'],
  'txt_attn.qkv': ['attn.add_q_proj', 'attn.add_k_proj', 'attn.add_v_proj'],
  'img_attn.proj': 'attn.to_out.0',
  'txt_attn.proj': 'attn.to_add_out',
  'img_mlp.0': 'ff.net.0.proj',
  'img_mlp.2': 'ff.net.2',
  'txt_mlp.0': 'ff_context.net.0.proj',
  'txt_mlp.2': 'ff_context.net.2',
  'img_mod.lin': 'norm1.linear',
  'txt_mod.lin': 'norm1_context.linear',
};
const SINGLE: Record<string, Fused> = {
  linear1: ['attn.to_q', 'attn.to_k', 'attn.to_v', 'proj_mlp'],
  linear2: 'proj_out',
  'modulation.lin': 'norm.linear',
};
const GLOBAL: Record<string, string> = {
  img_in: 'x_embedder',
  txt_in: 'context_embedder',
  'time_in.in_layer': 'time_text_embed.timestep_embedder.linear_1',
  'time_in.out_layer': 'time_text_embed.timestep_embedder.linear_2',
  'vector_in.in_layer': 'time_text_embed.text_embedder.linear_1',
  'vector_in.out_layer': 'time_text_embed.text_embedder.linear_2',
  'guidance_in.in_layer': 'time_text_embed.guidance_embedder.linear_1',
  'guidance_in.out_layer': 'time_text_embed.guidance_embedder.linear_2',
  'final_layer.linear': 'proj_out',
};
/** BFL computes (shift, scale); diffusers' AdaLayerNormContinuous (scale, shift). */
const SWAPPED = { 'final_layer.adaLN_modulation.1': 'norm_out.linear' } as Record<string, string>;

/** A BFL-named FLUX module of `rows` outputs and `cols` inputs, in diffusers' parts; null for other names. */
export function bflParts(path: string, rows: number, cols: number): NamePart[] | null {
  const whole = (p: string): NamePart[] => [{ path: p, start: 0, rows, at: 0, of: rows }];
  if (GLOBAL[path]) return whole(GLOBAL[path]);
  if (SWAPPED[path]) {
    if (rows % 2) return null;
    const half = rows / 2;
    return [
      { path: SWAPPED[path], start: 0, rows: half, at: half, of: rows },
      { path: SWAPPED[path], start: half, rows: half, at: 0, of: rows },
    ];
  }
  const block = /^(double|single)_blocks\.(\d+)\.(.+)$/.exec(path);
  if (!block) return null;
  const [, kind, n, rest] = block as unknown as [string, string, string, string];
  const prefix = kind === 'double' ? `transformer_blocks.${n}.` : `single_transformer_blocks.${n}.`;
  const fused = (kind === 'double' ? DOUBLE : SINGLE)[rest];
  if (fused === undefined) return null;
  if (typeof fused === 'string') return whole(prefix + fused);
  // q, k and v are as wide as the block's input; a single block's MLP takes the rest.
  const sizes = fused.length === 3 ? (rows % 3 ? null : [rows / 3, rows / 3, rows / 3]) : rows > 3 * cols ? [cols, cols, cols, rows - 3 * cols] : null;
  if (!sizes) return null;
  let start = 0;
  return fused.map((p, i) => {
    const part = { path: prefix + p, start, rows: sizes[i]!, at: 0, of: sizes[i]! };
    start += sizes[i]!;
    return part;
  });
}

const BFL_UNDERSCORED: [RegExp, (m: RegExpExecArray) => string][] = [
  [/^double_blocks_(\d+)_(img|txt)_(attn_qkv|attn_proj|mlp_0|mlp_2|mod_lin)$/, (m) => `double_blocks.${m[1]}.${m[2]}_${m[3]!.replace('_', '.')}`],
  [/^single_blocks_(\d+)_(linear1|linear2|modulation_lin)$/, (m) => `single_blocks.${m[1]}.${m[2]!.replace('_', '.')}`],
];
const BFL_GLOBAL_UNDERSCORED = new Map([...Object.keys(GLOBAL), ...Object.keys(SWAPPED)].map((k) => [k.replaceAll('.', '_'), k]));

function bflDotted(m: LoraModule): string | null {
  if (m.naming === 'dotted') return m.path;
  for (const [pattern, dotted] of BFL_UNDERSCORED) {
    const match = pattern.exec(m.path);
    if (match) return dotted(match);
  }
  return BFL_GLOBAL_UNDERSCORED.get(m.path) ?? null;
}

/** XLabs' processors: `qkv_lora1`/`proj_lora1` for the image stream, `…2` for the text stream, no digit in single blocks. */
function xlabsParts(m: LoraModule, rows: number): NamePart[] | null {
  const match = /^(double|single)_blocks\.(\d+)\.processor\.(qkv|proj)_lora([12]?)$/.exec(m.path);
  if (!match || m.naming !== 'dotted') return null;
  const [, kind, n, what, stream] = match as unknown as [string, string, string, string, string];
  const prefix = kind === 'double' ? `transformer_blocks.${n}.attn.` : `single_transformer_blocks.${n}.`;
  if (what === 'proj') return [{ path: kind === 'double' ? prefix + (stream === '2' ? 'to_add_out' : 'to_out.0') : `${prefix}proj_out`, start: 0, rows, at: 0, of: rows }];
  if (rows % 3) return null;
  const names = kind === 'double' && stream === '2' ? ['add_q_proj', 'add_k_proj', 'add_v_proj'] : ['to_q', 'to_k', 'to_v'];
  const base = kind === 'double' ? prefix : `${prefix}attn.`;
  return names.map((p, i) => ({ path: base + p, start: (i * rows) / 3, rows: rows / 3, at: 0, of: rows / 3 }));
}

/** The original UNet's block numbering (input_blocks, middle_block, output_blocks) in diffusers' names. */
function sgmPath(path: string, sep: string, layersPerBlock: number): string | null {
  const s = sep === '.' ? '\\.' : '_';
  const join = (...parts: (string | number)[]) => parts.join(sep);
  const resnet = (rest: string) =>
    (
      ({ [join('in_layers', 2)]: 'conv1', [join('out_layers', 3)]: 'conv2', [join('emb_layers', 1)]: 'time_emb_proj', skip_connection: 'conv_shortcut' }) as Record<string, string>
    )[rest] ?? null;
  const globals: Record<string, string> = {
    [join('time_embed', 0)]: join('time_embedding', 'linear_1'),
    [join('time_embed', 2)]: join('time_embedding', 'linear_2'),
    [join('label_emb', 0, 0)]: join('add_embedding', 'linear_1'),
    [join('label_emb', 0, 2)]: join('add_embedding', 'linear_2'),
    [join('input_blocks', 0, 0)]: 'conv_in',
    [join('out', 2)]: 'conv_out',
  };
  if (globals[path]) return globals[path];
  const per = layersPerBlock + 1;
  const input = new RegExp(`^input_blocks${s}(\\d+)${s}(\\d+)${s}(.+)$`).exec(path);
  if (input) {
    const [i, j, rest] = [Number(input[1]) - 1, Number(input[2]), input[3]!];
    if (i < 0) return null;
    const [block, layer] = [Math.floor(i / per), i % per];
    if (layer === layersPerBlock) return j === 0 && rest === 'op' ? join('down_blocks', block, 'downsamplers', 0, 'conv') : null;
    if (j === 1) return join('down_blocks', block, 'attentions', layer, rest);
    const r = j === 0 ? resnet(rest) : null;
    return r && join('down_blocks', block, 'resnets', layer, r);
  }
  const middle = new RegExp(`^middle_block${s}(\\d+)${s}(.+)$`).exec(path);
  if (middle) {
    const [j, rest] = [Number(middle[1]), middle[2]!];
    if (j === 1) return join('mid_block', 'attentions', 0, rest);
    const r = j === 0 || j === 2 ? resnet(rest) : null;
    return r && join('mid_block', 'resnets', j / 2, r);
  }
  const output = new RegExp(`^output_blocks${s}(\\d+)${s}(\\d+)${s}(.+)$`).exec(path);
  if (output) {
    const [i, j, rest] = [Number(output[1]), Number(output[2]), output[3]!];
    const [block, layer] = [Math.floor(i / per), i % per];
    // Blocks without attention have their upsampler second, the others third.
    if (rest === 'conv' && j >= 1) return join('up_blocks', block, 'upsamplers', 0, 'conv');
    if (j === 1) return join('up_blocks', block, 'attentions', layer, rest);
    const r = j === 0 ? resnet(rest) : null;
    return r && join('up_blocks', block, 'resnets', layer, r);
  }
  return null;
}

/**
 * The ways module `m` may be laid onto a graph's modules, most literal first: each a list of
 * parts that together take all of its up rows.
 */
export function moduleAlternatives(m: LoraModule, layersPerBlock: number | null): TargetPart[][] {
  const rows = m.up.shape[0]!;
  const cols = m.down.data.length / m.rank;
  const sep = m.naming === 'dotted' ? '.' : '_';
  const key = (path: string, naming = m.naming) => `${naming}:${path}`;
  const whole = (path: string): TargetPart[] => [{ key: key(path), upStart: 0, rows, at: 0, of: rows }];
  const dotted = (parts: NamePart[] | null): TargetPart[] | null =>
    parts && parts.map((p) => ({ key: key(p.path, 'dotted'), upStart: p.start, rows: p.rows, at: p.at, of: p.of }));
  const bfl = bflDotted(m);
  const sgm = layersPerBlock === null ? null : sgmPath(m.path, sep, layersPerBlock);
  const root = `text_model${sep}`;
  const alternatives = [
    whole(m.path),
    dotted(xlabsParts(m, rows)),
    bfl === null ? null : dotted(bflParts(bfl, rows, cols)),
    sgm === null ? null : whole(sgm),
    m.path.startsWith(root) ? whole(m.path.slice(root.length)) : null,
  ];
  return alternatives.filter((a): a is TargetPart[] => a !== null);
}
