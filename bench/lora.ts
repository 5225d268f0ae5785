/**
 * What applying a LoRA costs: `npm run bench:lora -- [--rank 16] [--scale 0.02] [--rounds 2] [--js] [--full]`.
 *
 * Builds two synthetic graphs of real shapes, exported as the big models are (float16 weights
 * in an external data file, `onnx::MatMul_N` weights stored [in, out], module paths in node
 * names), and a PEFT LoRA of the given rank on every one of their Linear weights:
 *
 * - SDXL's UNet: every attention's proj_in/proj_out and transformer blocks (to_q/k/v/out of
 *   both attentions, the GEGLU feed-forward) at widths 640 (10 blocks) and 1280 (60 blocks),
 *   cross-attention 2048 wide: 2.2 billion weights;
 * - FLUX.1's transformer: 19 double blocks (q, k, v and out of both streams, both MLPs, both
 *   modulations) and 38 single blocks (q, k, v, proj_mlp, proj_out, modulation), width 3072:
 *   11.8 billion weights.
 *
 * `--scale` keeps that fraction of the blocks (at least one of each kind; `--full` all of them:
 * 4.4 and 24 GB). For each it prints the time of Kiln's LoRA apply (what `timing.loraLoadMs`
 * measures besides reading the adapter: reading the graph, matching, and reading, merging and
 * writing each patched tensor) beside an anchor measured in the same run on the same tensors:
 * reading their bytes from the data file and writing them to a scratch file, the least any
 * merge must do. `--js` also times the single-threaded JavaScript merge (`mergeLora`, for
 * graphs held in memory) on a copy with the weights inline.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseLoraAdapter } from '../src/models/lora-adapter.js';
import { loraPatcher, mergeLora } from '../src/models/lora-merge.js';
import { type TensorToWrite, writeSafetensors } from '../src/models/safetensors.js';
import { DataType, GraphBuilder } from '../src/pipelines/onnx/graph-builder.js';
import { parseCommandLine } from '../src/cli/command-line.js';

const USAGE = `usage: npm run bench:lora -- [--rank 16] [--scale 0.02] [--rounds 2] [--js] [--full]
  --rank N      the adapter's rank (default 16)
  --scale F     the fraction of each model's blocks to build (default 0.02)
  --rounds N    timed rounds of each measurement (default 2)
  --js          also time the single-threaded JavaScript merge
  --full        every block (4.4 and 24 GB of weights)
  --help        this text`;
const { values: args } = parseCommandLine(USAGE, {
  rank: { type: 'string', default: '16' },
  scale: { type: 'string', default: '0.02' },
  rounds: { type: 'string', default: '2' },
  js: { type: 'boolean', default: false },
  full: { type: 'boolean', default: false },
});
const rank = Number(args.rank);
const scale = args.full ? 1 : Number(args.scale);
const rounds = Number(args.rounds);

/** A Linear layer: module path, out and in features. */
type Layer = [string, number, number];

function sdxlBlock(prefix: string, d: number): Layer[] {
  const attn = (n: 1 | 2): Layer[] => [
    [`${prefix}.attn${n}.to_q`, d, d],
    [`${prefix}.attn${n}.to_k`, d, n === 1 ? d : 2048],
    [`${prefix}.attn${n}.to_v`, d, n === 1 ? d : 2048],
    [`${prefix}.attn${n}.to_out.0`, d, d],
  ];
  return [...attn(1), ...attn(2), [`${prefix}.ff.net.0.proj`, 8 * d, d], [`${prefix}.ff.net.2`, d, 4 * d]];
}

/** SDXL's attentions: (path, width, transformer blocks); each has proj_in and proj_out. */
const SDXL_ATTENTIONS: [string, number, number][] = [
  ...[0, 1].map((i): [string, number, number] => [`down_blocks.1.attentions.${i}`, 640, 2]),
  ...[0, 1].map((i): [string, number, number] => [`down_blocks.2.attentions.${i}`, 1280, 10]),
  ['mid_block.attentions.0', 1280, 10],
  ...[0, 1, 2].map((i): [string, number, number] => [`up_blocks.0.attentions.${i}`, 1280, 10]),
  ...[0, 1, 2].map((i): [string, number, number] => [`up_blocks.1.attentions.${i}`, 640, 2]),
];

function sdxlLayers(fraction: number): Layer[] {
  const layers: Layer[] = [];
  for (const d of [640, 1280]) {
    const attentions = SDXL_ATTENTIONS.filter(([, w]) => w === d);
    const blocks = attentions.flatMap(([p, , n]) => Array.from({ length: n }, (_, i) => [p, i] as const));
    const keepAttentions = attentions.slice(0, Math.max(1, Math.round(attentions.length * fraction)));
    const keepBlocks = blocks.slice(0, Math.max(1, Math.round(blocks.length * fraction)));
    for (const [p] of keepAttentions) layers.push([`${p}.proj_in`, d, d], [`${p}.proj_out`, d, d]);
    for (const [p, i] of keepBlocks) layers.push(...sdxlBlock(`${p}.transformer_blocks.${i}`, d));
  }
  return layers;
}

function fluxLayers(fraction: number): Layer[] {
  const h = 3072;
  const mlp = 4 * h;
  const layers: Layer[] = [];
  for (let i = 0; i < Math.max(1, Math.round(19 * fraction)); i++) {
    const b = `transformer_blocks.${i}`;
    for (const p of ['to_q', 'to_k', 'to_v', 'add_q_proj', 'add_k_proj', 'add_v_proj', 'to_out.0', 'to_add_out']) layers.push([`${b}.attn.${p}`, h, h]);
    for (const ff of ['ff', 'ff_context']) layers.push([`${b}.${ff}.net.0.proj`, mlp, h], [`${b}.${ff}.net.2`, h, mlp]);
    layers.push([`${b}.norm1.linear`, 6 * h, h], [`${b}.norm1_context.linear`, 6 * h, h]);
  }
  for (let i = 0; i < Math.max(1, Math.round(38 * fraction)); i++) {
    const b = `single_transformer_blocks.${i}`;
    for (const p of ['to_q', 'to_k', 'to_v']) layers.push([`${b}.attn.${p}`, h, h]);
    layers.push([`${b}.proj_mlp`, mlp, h], [`${b}.proj_out`, h, h + mlp], [`${b}.norm.linear`, 3 * h, h]);
  }
  return layers;
}

/** Random float16 bit patterns of magnitude 1/16 to 1/8, made fast (Box–Muller would take longer than the merge). */
function halves(count: number): Uint8Array {
  const bits = new Uint16Array(count);
  crypto.randomFillSync(bits);
  for (let i = 0; i < count; i++) bits[i] = (bits[i]! & 0x83ff) | 0x2c00;
  return new Uint8Array(bits.buffer);
}

interface Built {
  graph: string;
  /** Each weight's byte range in the data file. */
  ranges: [number, number][];
  inlineGraph?: Uint8Array;
  weights: number;
}

/** The graph (weights in `model.onnx_data`) in `dir`, and optionally the same graph with the weights inline. */
async function build(dir: string, root: string, layers: Layer[], inline: boolean): Promise<Built> {
  const g = new GraphBuilder('bench');
  const inl = inline ? new GraphBuilder('bench-inline') : undefined;
  g.input('x', DataType.FLOAT16, [1, 'in']);
  inl?.input('x', DataType.FLOAT16, [1, 'in']);
  const data = await fs.open(path.join(dir, 'model.onnx_data'), 'w');
  const ranges: [number, number][] = [];
  let offset = 0;
  let weights = 0;
  for (const [i, [module, out, inner]] of layers.entries()) {
    const bytes = halves(out * inner);
    await data.write(bytes, 0, bytes.length, offset);
    ranges.push([offset, bytes.length]);
    const name = `onnx::MatMul_${i}`;
    const node = { name: `/${root}/${module.replace(/\.(?=\D)/g, '/')}/MatMul` };
    g.op('MatMul', ['x', g.externalWeight(name, [inner, out], 'model.onnx_data', offset, DataType.FLOAT16)], {}, `y${i}`, node);
    inl?.op('MatMul', ['x', inl.halfWeight(name, [inner, out], new Uint16Array(bytes.buffer))], {}, `y${i}`, node);
    offset += Math.ceil(bytes.length / 64) * 64;
    weights += out * inner;
  }
  await data.close();
  g.output('y0', DataType.FLOAT16, [1, layers[0]![1]]);
  inl?.output('y0', DataType.FLOAT16, [1, layers[0]![1]]);
  await fs.writeFile(path.join(dir, 'model.onnx'), g.toBytes());
  return { graph: path.join(dir, 'model.onnx'), ranges, weights, ...(inl ? { inlineGraph: inl.toBytes() } : {}) };
}

function adapterFor(component: string, layers: Layer[]): Uint8Array {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [module, out, inner] of layers) {
    tensors[`${component}.${module}.lora_A.weight`] = { dtype: 'F16', shape: [rank, inner], data: Float32Array.from({ length: rank * inner }, (_, i) => ((i % 7) - 3) / 64) };
    tensors[`${component}.${module}.lora_B.weight`] = { dtype: 'F16', shape: [out, rank], data: Float32Array.from({ length: out * rank }, (_, i) => ((i % 5) - 2) / 256) };
  }
  return writeSafetensors(tensors);
}

/** Reading the patched tensors' bytes and writing them to a scratch file, as the merge must at least. */
async function copyAnchor(dataFile: string, ranges: [number, number][], scratch: string): Promise<number> {
  const t0 = performance.now();
  const source = await fs.open(dataFile, 'r');
  const target = await fs.open(path.join(scratch, 'copy.bin'), 'w');
  let at = 0;
  for (const [offset, length] of ranges) {
    const buf = new Uint8Array(new ArrayBuffer(length));
    await source.read(buf, 0, length, offset);
    await target.write(buf, 0, length, at);
    at = Math.ceil((at + length) / 4096) * 4096;
  }
  await Promise.all([source.close(), target.close()]);
  const ms = performance.now() - t0;
  await fs.rm(path.join(scratch, 'copy.bin'));
  return ms;
}

const gb = (bytes: number) => (bytes / 1e9).toFixed(2);
const best = (xs: number[]) => Math.min(...xs);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`LoRA apply, rank ${rank}, float16 weights in external data, ${os.availableParallelism()} cores (load average ${os.loadavg()[0]!.toFixed(1)}), scale ${scale}`);
for (const [name, root, component, layers] of [
  ['SDXL UNet', 'unet', 'unet', sdxlLayers(scale)],
  ['FLUX.1 transformer', 'transformer', 'transformer', fluxLayers(scale)],
] as const) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-bench-lora-'));
  const scratch = path.join(dir, 'scratch');
  await fs.mkdir(scratch);
  try {
    const built = await build(dir, root, layers, args.js);
    const adapterBytes = adapterFor(component, layers);
    const t0 = performance.now();
    const adapter = parseLoraAdapter(adapterBytes);
    const parseMs = performance.now() - t0;
    const anchor: number[] = [];
    const apply: number[] = [];
    for (let r = 0; r < rounds; r++) {
      anchor.push(await copyAnchor(path.join(dir, 'model.onnx_data'), built.ranges, scratch));
      const patcher = loraPatcher(adapter, 0.8, { file: `${root}/model.onnx`, component, scratchDir: scratch });
      const patched = await patcher.open(built.graph);
      await patched.dispose();
      apply.push(patcher.report().mergeMs);
    }
    const bytes = built.weights * 2;
    console.log(`\n${name}: ${layers.length} Linear weights, ${(built.weights / 1e6).toFixed(0)} M parameters (${gb(bytes)} GB), adapter ${(adapterBytes.length / 2 ** 20).toFixed(1)} MiB parsed in ${parseMs.toFixed(0)} ms`);
    console.log(`  anchor, read + write of the same bytes: best ${best(anchor).toFixed(0)} ms, median ${median(anchor).toFixed(0)} ms (${gb(bytes / (best(anchor) / 1000))} GB/s)`);
    console.log(
      `  Kiln LoRA apply (onnxruntime kernel):   best ${best(apply).toFixed(0)} ms, median ${median(apply).toFixed(0)} ms (${gb(bytes / (best(apply) / 1000))} GB/s, ${((best(apply) * 1e6) / built.weights).toFixed(2)} ns/weight), ${(best(apply) / best(anchor)).toFixed(2)}× the anchor`,
    );
    if (built.inlineGraph) {
      const t1 = performance.now();
      mergeLora(built.inlineGraph, adapter, 0.8, { component });
      const jsMs = performance.now() - t1;
      console.log(`  JavaScript merge (mergeLora, 1 thread): ${jsMs.toFixed(0)} ms (${((jsMs * 1e6) / built.weights).toFixed(2)} ns/weight), ${(jsMs / best(apply)).toFixed(1)}× the onnxruntime apply`);
    }
    const full = name === 'SDXL UNet' ? sdxlLayers(1) : fluxLayers(1);
    const fullWeights = full.reduce((n, [, o, i]) => n + o * i, 0);
    if (scale < 1) console.log(`  at that rate the full set (${(fullWeights / 1e9).toFixed(2)} G weights): ~${((best(apply) * fullWeights) / built.weights / 1000).toFixed(1)} s apply, ~${((best(anchor) * fullWeights) / built.weights / 1000).toFixed(1)} s anchor`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
