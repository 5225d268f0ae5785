import { bflParts } from './lora-module-names.js';
import type { GraphInitializer, GraphNode, GraphStructure } from './onnx-graph-structure.js';

/**
 * The weights of a graph that a LoRA can patch, each with the module it belongs to and how it is
 * laid out, found the ways exporters leave them:
 *
 * - by initializer name, where the export kept PyTorch's (`…attn1.to_q.weight`, [out, in]);
 * - by node name, where constant folding renamed the weight (`onnx::MatMul_2366`, [in, out])
 *   but the node that uses it keeps the module path (`/unet/down_blocks.1/…/attn1/to_q/MatMul`);
 * - by `pkg.torch.onnx.name_scopes` in the node's metadata, where the dynamo exporter keeps it
 *   (`['', 'transformer_blocks.0', 'transformer_blocks.0.attn', 'transformer_blocks.0.attn.to_q', 'linear']`).
 *
 * The layout comes from how the graph uses the weight (MatMul's B is [in, out]; Gemm's B is
 * [out, in] with transB; a Transpose in between swaps them; Conv kernels are [out, in, kh, kw]),
 * never from its shape, which cannot tell square matrices apart.
 */

export interface GraphWeight {
  tensor: GraphInitializer;
  /** The module path, dotted, as the graph spells it (with the exporter's own prefix, e.g. `unet.`). */
  module: string;
  /** `out-in`: PyTorch's layout ([out, in, …]); `in-out`: transposed, as MatMul takes it. */
  layout: 'out-in' | 'in-out';
  /** The module's output features. */
  rows: number;
  /** Its input features times the kernel's size. */
  cols: number;
  /** A convolution's kernel size ([] for a linear layer). */
  kernel: number[];
  /** Other modules using the very same initializer: patching it would change them too. */
  sharedWith: string[];
}

/** Where a module's rows lie: its rows [at, at + rows) are rows [start, start + rows) of `weight`. */
export interface WeightSlot {
  weight: GraphWeight;
  start: number;
  rows: number;
  at: number;
  /** Leading path segments of the graph's name that the key leaves out (the exporter's prefix). */
  extra: number;
}

export interface WeightIndex {
  weights: GraphWeight[];
  /** `dotted:<path>` and `underscored:<path_with_underscores>` → where that module's weight lies. */
  slots: Map<string, WeightSlot[]>;
  /** A UNet's resnets per down block, which the original (LDM) block numbering depends on. */
  layersPerBlock: number | null;
  /** Matrices that neither their name nor a node using them ties to a module (renamed by constant folding, say). */
  anonymous: GraphInitializer[];
}

const WEIGHT_OPS = new Set(['MatMul', 'Gemm', 'Conv']);
const PASS_THROUGH = new Set(['Transpose', 'Cast', 'Identity']);

export function indexGraphWeights(structure: GraphStructure): WeightIndex {
  const consumers = new Map<string, { node: GraphNode; input: number }[]>();
  for (const node of structure.nodes) {
    node.inputs.forEach((name, input) => {
      const list = consumers.get(name) ?? [];
      list.push({ node, input });
      consumers.set(name, list);
    });
  }
  const weights: GraphWeight[] = [];
  const anonymous: GraphInitializer[] = [];
  for (const tensor of structure.initializers) {
    if (tensor.dims.length < 2) continue;
    const uses = usesOf(tensor.name, consumers);
    const named = tensor.name.endsWith('.weight') ? tensor.name.slice(0, -'.weight'.length) : null;
    const byModule = new Map<string, Use | undefined>();
    if (named) byModule.set(named, uses[0]);
    else for (const use of uses) {
      const module = moduleOfNodes(use.chain);
      if (module && !byModule.has(module)) byModule.set(module, use);
    }
    if (!byModule.size) {
      anonymous.push(tensor);
      continue;
    }
    for (const [module, use] of byModule) {
      // Unused, or used by something else: a PyTorch-named weight is in PyTorch's layout.
      const layout = use?.layout ?? 'out-in';
      const conv = use?.conv ?? tensor.dims.length > 2;
      const [first, second, ...kernel] = tensor.dims as [number, number, ...number[]];
      const rows = layout === 'out-in' ? first : second;
      const cols = layout === 'out-in' ? second * kernel.reduce((a, b) => a * b, 1) : first;
      const sharedWith = [...byModule.keys()].filter((m) => m !== module);
      weights.push({ tensor, module, layout, rows, cols, kernel: conv ? kernel : [], sharedWith });
    }
  }
  return { weights, slots: slotsOf(weights), layersPerBlock: layersPerBlock(weights), anonymous };
}

interface Use {
  /** The nodes from the initializer to the op that uses it as a weight, that op last. */
  chain: GraphNode[];
  layout: GraphWeight['layout'];
  conv: boolean;
}

/** How the graph uses an initializer as a weight, through Transpose, Cast and Identity nodes. */
function usesOf(name: string, consumers: Map<string, { node: GraphNode; input: number }[]>, chain: GraphNode[] = [], transposed = false): Use[] {
  if (chain.length > 3) return [];
  const uses: Use[] = [];
  for (const { node, input } of consumers.get(name) ?? []) {
    if (PASS_THROUGH.has(node.op) && input === 0) {
      const swaps = node.op === 'Transpose' && isMatrixTranspose(node);
      if (node.op === 'Transpose' && !swaps) continue;
      uses.push(...usesOf(node.outputs[0] ?? '', consumers, [...chain, node], transposed !== swaps));
    } else if (WEIGHT_OPS.has(node.op) && input === 1) {
      // MatMul and Gemm (without transB) multiply by [in, out]; Conv kernels are [out, in, …].
      const inOut = node.op === 'MatMul' || (node.op === 'Gemm' && node.attributes.transB !== 1);
      const stored = node.op === 'Conv' ? 'out-in' : inOut !== transposed ? 'in-out' : 'out-in';
      uses.push({ chain: [...chain, node], layout: stored, conv: node.op === 'Conv' });
    }
  }
  return uses;
}

const isMatrixTranspose = (node: GraphNode) => {
  const perm = node.attributes.perm;
  return perm === undefined || (Array.isArray(perm) && perm.length === 2 && perm[0] === 1 && perm[1] === 0);
};

/** The module a weight's op belongs to: from name-scope metadata, else from node names such as `/unet/conv_in/Conv`. */
function moduleOfNodes(chain: GraphNode[]): string | null {
  for (const node of [...chain].reverse()) {
    const scopes = nameScopes(node.metadata['pkg.torch.onnx.name_scopes']);
    // The last scope is the op itself; the one before it is the module that ran it.
    const module = scopes && scopes.length >= 2 ? scopes[scopes.length - 2] : undefined;
    if (module) return module;
  }
  for (const node of [...chain].reverse()) {
    if (!node.name.startsWith('/')) continue;
    const segments = node.name.slice(1).split('/').slice(0, -1);
    if (segments.length && segments.every(Boolean)) return segments.join('.');
  }
  return null;
}

/** Python's repr of a list of strings, as the dynamo exporter writes it. */
function nameScopes(repr: string | undefined): string[] | null {
  if (!repr) return null;
  const items = [...repr.matchAll(/'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"/g)].map((m) => (m[1] ?? m[2] ?? '').replace(/\\(.)/g, '$1'));
  return items.length ? items : null;
}

function slotsOf(weights: GraphWeight[]): Map<string, WeightSlot[]> {
  const slots = new Map<string, WeightSlot[]>();
  const add = (path: string[], slot: WeightSlot) => {
    for (const key of [`dotted:${path.join('.')}`, `underscored:${path.join('_')}`]) {
      const list = slots.get(key) ?? [];
      if (!list.some((s) => s.weight === slot.weight && s.start === slot.start)) list.push(slot);
      slots.set(key, list);
    }
  };
  const bflGraph = weights.some((w) => /(^|\.)(double|single)_blocks\.\d+\./.test(w.module));
  for (const weight of weights) {
    const segments = weight.module.split('.');
    for (let i = 0; i < segments.length; i++) {
      const suffix = segments.slice(i);
      add(suffix, { weight, start: 0, rows: weight.rows, at: 0, extra: i });
      // A graph in the original FLUX names (fused qkv, linear1) also answers to diffusers' names.
      const parts = bflGraph ? bflParts(suffix.join('.'), weight.rows, weight.cols) : null;
      for (const part of parts ?? []) add(part.path.split('.'), { weight, start: part.start, rows: part.rows, at: part.at, extra: i });
    }
  }
  return slots;
}

function layersPerBlock(weights: GraphWeight[]): number | null {
  let most = -1;
  for (const w of weights) {
    const m = /(?:^|\.)down_blocks\.0\.resnets\.(\d+)\./.exec(w.module);
    if (m) most = Math.max(most, Number(m[1]));
  }
  return most < 0 ? null : most + 1;
}
