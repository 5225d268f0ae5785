import { DataType, GraphBuilder } from '../onnx/graph-builder.js';
import { SeededRandom } from '../random.js';

/**
 * Kiln's built-in model: two small ONNX graphs generated from fixed seeds, so every install has
 * the same bytes without downloading anything.
 *
 * - `text_encoder.onnx`: hashed word ids → mean of learned-looking embeddings → a prompt vector.
 * - `denoiser.onnx`: a compositional pattern-producing network. Per pixel it maps the pixel's
 *   coordinates, the current (noisy) image and a conditioning vector (prompt + seed style) to a
 *   clean-image estimate, and moves the image part of the way there. The pipeline runs it once
 *   per denoising step.
 *
 * Its named weight matrices (`layer1.weight`, `layer2.weight`, …) are what LoRA adapters patch.
 * They are stored as PyTorch stores Linear weights, [out, in], and transposed in the graph
 * (folded away when the session is optimised), so adapters merge the same way as into UNets.
 */
export const BUILTIN = {
  version: 1,
  vocab: 4096,
  tokens: 32,
  embed: 32,
  style: 32,
  hidden: 32,
} as const;

/** What a generation with the built-in model uses when the request leaves a setting out. */
export const BUILTIN_DEFAULTS = { steps: 8, width: 256, height: 256, guidanceScale: 7.5 } as const;

export const BUILTIN_FILES = {
  index: 'model_index.json',
  textEncoder: 'text_encoder.onnx',
  denoiser: 'denoiser.onnx',
} as const;

/** The denoiser's LoRA-patchable modules and their weights' shapes, [out, in]. */
export const builtinLoraTargets: Record<string, [number, number]> = {
  cond: [BUILTIN.hidden, BUILTIN.embed + BUILTIN.style],
  layer1: [BUILTIN.hidden, 3],
  layer2: [BUILTIN.hidden, BUILTIN.hidden],
  layer3: [BUILTIN.hidden, BUILTIN.hidden],
  to_rgb: [3, BUILTIN.hidden],
};

export function buildBuiltinModel(): { path: string; bytes: Uint8Array }[] {
  const index = {
    _class_name: 'KilnBuiltinPipeline',
    _kiln_version: BUILTIN.version,
    pipeline: 'builtin',
    text_encoder: BUILTIN_FILES.textEncoder,
    denoiser: BUILTIN_FILES.denoiser,
  };
  return [
    { path: BUILTIN_FILES.index, bytes: new TextEncoder().encode(`${JSON.stringify(index, null, 2)}\n`) },
    { path: BUILTIN_FILES.textEncoder, bytes: buildTextEncoder() },
    { path: BUILTIN_FILES.denoiser, bytes: buildDenoiser() },
  ];
}

function buildTextEncoder(): Uint8Array {
  const { vocab, tokens, embed } = BUILTIN;
  const rng = new SeededRandom(0x6b696c6e, 1);
  const g = new GraphBuilder('kiln-builtin-text-encoder');
  const ids = g.input('token_ids', DataType.INT64, ['batch', tokens]);
  const table = g.weight('text.embedding', [vocab, embed], rng.normals(vocab * embed));
  const embedded = g.op('Gather', [table, ids], { axis: 0 }); // [b, t, e]
  const present = g.op('Cast', [g.op('Greater', [ids, g.int64s('zero_id', [0])])], { to: DataType.FLOAT }); // [b, t]
  const mask = g.op('Unsqueeze', [present, g.int64s('axis_2', [2])]); // [b, t, 1]
  const axis1 = g.int64s('axis_1', [1]);
  const sum = g.op('ReduceSum', [g.op('Mul', [embedded, mask]), axis1], { keepdims: 0 }); // [b, e]
  const count = g.op('Max', [g.op('ReduceSum', [present, axis1], { keepdims: 1 }), g.scalar('one', 1)]); // [b, 1]
  const mean = g.op('Div', [sum, count]);
  const proj = g.weight('text_proj.weight', [embed, embed], rng.normals(embed * embed, 1 / Math.sqrt(embed)));
  const bias = g.weight('text_proj.bias', [embed], rng.normals(embed, 0.1));
  g.op('Tanh', [g.op('Add', [g.op('MatMul', [mean, proj]), bias])], {}, 'prompt_embedding');
  g.output('prompt_embedding', DataType.FLOAT, ['batch', embed]);
  return g.toBytes();
}

function buildDenoiser(): Uint8Array {
  const { embed, style, hidden: h } = BUILTIN;
  const rng = new SeededRandom(0x6b696c6e, 2);
  const g = new GraphBuilder('kiln-builtin-denoiser');
  const coords = g.input('coords', DataType.FLOAT, [1, 'pixels', 3]); // x, y, radius
  const state = g.input('state', DataType.FLOAT, ['batch', 'pixels', 3]); // image in [-1, 1]
  const cond = g.input('cond', DataType.FLOAT, ['batch', 1, embed + style]); // prompt ‖ seed style
  const noise = g.input('noise_level', DataType.FLOAT, [1, 1, 1]);
  const mix = g.input('mix', DataType.FLOAT, [1, 1, 1]);

  const w = (name: string, dims: number[], scale: number) => g.weight(name, dims, rng.normals(dims.reduce((a, b) => a * b), scale));
  // x · Wᵀ with W stored [out, in], as in PyTorch.
  const linear = (x: string, name: string, fanIn: number, fanOut: number, scale: number) =>
    g.op('MatMul', [x, g.op('Transpose', [w(`${name}.weight`, [fanOut, fanIn], scale)], { perm: [1, 0] })]);
  const dense = (x: string, name: string, fanIn: number, fanOut: number, scale: number) =>
    g.op('Add', [linear(x, name, fanIn, fanOut, scale), w(`${name}.bias`, [fanOut], 0.1)]);

  // The condition shifts each first-layer unit's phase and scales its frequency, so prompts and
  // seeds change the structure of the pattern, not just its colours.
  const phase = g.op('Tanh', [dense(cond, 'cond', embed + style, h, 1 / Math.sqrt(embed + style))]); // [b, 1, h]
  const freq = g.op('Add', [g.scalar('freq_base', 1), g.op('Mul', [g.scalar('freq_span', 0.9), g.op('Tanh', [dense(cond, 'cond_freq', embed + style, h, 1 / Math.sqrt(embed + style))])])]);
  const spatial = g.op('Mul', [linear(coords, 'layer1', 3, h, 2.5), freq]); // [b, p, h]
  const fromState = linear(state, 'state_in', 3, h, 0.15);
  const time = g.op('Mul', [noise, w('time.weight', [1, 1, h], 0.5)]);
  const pre1 = g.op('Add', [g.op('Add', [g.op('Add', [spatial, fromState]), g.op('Mul', [phase, g.scalar('phase_scale', Math.PI)])]), time]);
  const h1 = g.op('Sin', [pre1]);
  const h2 = g.op('Tanh', [dense(h1, 'layer2', h, h, 1.6 / Math.sqrt(h))]);
  const h3 = g.op('Tanh', [dense(h2, 'layer3', h, h, 1.6 / Math.sqrt(h))]);
  const estimate = g.op('Tanh', [dense(h3, 'to_rgb', h, 3, 1.4 / Math.sqrt(h))]); // clean image estimate
  g.op('Add', [state, g.op('Mul', [mix, g.op('Sub', [estimate, state])])], {}, 'next_state');
  g.output('next_state', DataType.FLOAT, ['batch', 'pixels', 3]);
  return g.toBytes();
}
