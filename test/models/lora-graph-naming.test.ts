import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoraAdapter, parseLoraAdapter } from '../../src/models/lora-adapter.js';
import { loraPatcher, mergeLora } from '../../src/models/lora-merge.js';
import { fromHalfArray, toHalfArray } from '../../src/pipelines/onnx/float16.js';
import { DataType, GraphBuilder } from '../../src/pipelines/onnx/graph-builder.js';
import { SeededRandom } from '../../src/pipelines/random.js';
import { loraFile } from '../support/lora-files.js';
import { added, loraDelta, maxAbsDiff, transpose, weightValues } from '../support/lora-math.js';

/**
 * One small graph (two Linear layers, a 3×3 and a 1×1 convolution) exported five ways: with
 * PyTorch's weight names, as the TorchScript exporter with constant folding leaves it
 * (`onnx::MatMul_N` weights stored [in, out], module paths in node names), as the dynamo
 * exporter does (module paths in `pkg.torch.onnx.name_scopes`), with Gemm nodes, and in float16
 * weights cast up before use. Every adapter key format must land on the same modules in each.
 */

const IN = 32;
const MODULES = {
  q: { path: 'transformer_blocks.0.attn.to_q', out: 32, in: [IN] },
  f: { path: 'transformer_blocks.0.ff.net.2', out: 48, in: [IN] },
  c: { path: 'conv_in', out: 6, in: [4, 3, 3] },
  p: { path: 'proj_in', out: 6, in: [4, 1, 1] },
} as const;
type Key = keyof typeof MODULES;
const KEYS = Object.keys(MODULES) as Key[];

/** The base weights in PyTorch's layout, [out, in, …]. */
const BASE: Record<Key, Float32Array> = Object.fromEntries(
  KEYS.map((k, i) => {
    const m = MODULES[k];
    return [k, new SeededRandom(10 + i).normals(m.out * (m.in as readonly number[]).reduce((a, b) => a * b, 1), 0.3)];
  }),
) as Record<Key, Float32Array>;

type Style = 'pytorch' | 'torchscript' | 'dynamo' | 'gemm' | 'float16';
const STYLES: Style[] = ['pytorch', 'torchscript', 'dynamo', 'gemm', 'float16'];

interface Exported {
  bytes: Uint8Array;
  /** Each module's initializer, and whether it is stored [in, out]. */
  weights: Record<Key, { name: string; transposed: boolean }>;
}

function exportGraph(style: Style): Exported {
  const g = new GraphBuilder(`naming-${style}`);
  g.input('x', DataType.FLOAT, [5, IN]);
  g.input('img', DataType.FLOAT, [1, 4, 6, 6]);
  const weights = {} as Exported['weights'];
  let counter = 100;
  const scopes = (module: string, op: string) => {
    const parts = module.split('.');
    const cumulative = parts.map((_, i) => parts.slice(0, i + 1).join('.'));
    return { 'pkg.torch.onnx.name_scopes': `['', ${cumulative.map((s) => `'${s}'`).join(', ')}, '${op}']` };
  };
  const nodeName = (module: string, op: string) => `/model/${module.replace(/\.(?=\D)/g, '/')}/${op}`;
  /** A weight stored as given, in float32 or (for the float16 style) float16 cast up. */
  const store = (name: string, dims: number[], values: Float32Array) => {
    if (style !== 'float16') return g.weight(name, dims, values);
    return g.op('Cast', [g.halfWeight(name, dims, toHalfArray(values))], { to: DataType.FLOAT });
  };

  for (const k of ['q', 'f'] as const) {
    const { path: module, out } = MODULES[k];
    const w = BASE[k];
    const wt = transpose(w, out, IN);
    let y: string;
    if (style === 'pytorch') {
      const name = `model.${module}.weight`;
      weights[k] = { name, transposed: false };
      y = g.op('MatMul', ['x', g.op('Transpose', [g.weight(name, [out, IN], w)], { perm: [1, 0] })]);
    } else if (style === 'gemm') {
      // One Gemm with transB (weight [out, in]), one without ([in, out]).
      const transB = k === 'q' ? 1 : 0;
      const name = `onnx::Gemm_${counter++}`;
      weights[k] = { name, transposed: !transB };
      y = g.op('Gemm', ['x', transB ? g.weight(name, [out, IN], w) : g.weight(name, [IN, out], wt)], { transB }, undefined, { name: nodeName(module, 'Gemm') });
    } else {
      const name = style === 'dynamo' ? `val_${counter++}` : `onnx::MatMul_${counter++}`;
      weights[k] = { name, transposed: true };
      const details = style === 'dynamo' ? { name: `node_linear_${counter}`, metadata: scopes(module, `linear_${counter}`) } : { name: nodeName(module, 'MatMul') };
      y = g.op('MatMul', ['x', store(name, [IN, out], wt)], {}, undefined, details);
    }
    g.op('Identity', [y], {}, k);
    g.output(k, DataType.FLOAT, [5, out]);
  }
  for (const k of ['c', 'p'] as const) {
    const { path: module, out, in: inner } = MODULES[k];
    const name = style === 'pytorch' ? `model.${module}.weight` : style === 'dynamo' ? `val_${counter++}` : `onnx::Conv_${counter++}`;
    weights[k] = { name, transposed: false };
    const details = style === 'pytorch' ? {} : style === 'dynamo' ? { name: `node_conv2d_${counter}`, metadata: scopes(module, 'conv2d') } : { name: nodeName(module, 'Conv') };
    const y = g.op('Conv', ['img', store(name, [out, ...inner], BASE[k])], { pads: inner[1] === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0] }, undefined, details);
    g.op('Identity', [y], {}, k);
    g.output(k, DataType.FLOAT, [1, out, 6, 6]);
  }
  return { bytes: g.toBytes(), weights };
}

type Format = 'kohya' | 'peft' | 'diffusers' | 'comfy';
const FORMATS: Format[] = ['kohya', 'peft', 'diffusers', 'comfy'];

function adapterFor(format: Format): LoraAdapter {
  const stem = (module: string) =>
    ({ kohya: `lora_unet_${module.replaceAll('.', '_')}`, peft: `unet.${module}`, diffusers: `unet.${module}`, comfy: `diffusion_model.${module}` })[format];
  const modules = Object.fromEntries(
    KEYS.map((k, i) => {
      const m = MODULES[k];
      // A 1×1 convolution's LoRA is often saved [rank, in], without the kernel's dimensions.
      const inner = k === 'p' ? [m.in[0]] : [...m.in];
      return [stem(m.path), { out: m.out, in: inner, rank: 2 + (i % 2), alpha: i === 0 ? 1.5 : undefined }];
    }),
  );
  const suffixes = format === 'comfy' ? 'kohya' : format;
  return parseLoraAdapter(loraFile(suffixes, modules, { seed: FORMATS.indexOf(format) + 1 }));
}

const OPTIONS = { component: 'unet', prefixes: ['unet', 'diffusion_model'] };
const WEIGHT = 0.8;

/** The merged weight each module should have, in the graph's own layout. */
function expected(adapter: LoraAdapter, k: Key, transposed: boolean): Float32Array {
  const m = adapter.modules.find((x) => x.path.replaceAll('_', '.') === MODULES[k].path.replaceAll('_', '.'))!;
  const merged = added(BASE[k], loraDelta(m, WEIGHT));
  return transposed ? transpose(merged, MODULES[k].out, IN) : merged;
}

describe('merging every key format into every export naming', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-lora-naming-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const x = new SeededRandom(3).normals(5 * IN);
  const run = async (bytes: Uint8Array) => {
    const session = await ort.InferenceSession.create(bytes);
    try {
      const out = await session.run({ x: new ort.Tensor('float32', x, [5, IN]), img: new ort.Tensor('float32', new SeededRandom(4).normals(144), [1, 4, 6, 6]) });
      return { q: out.q!.data as Float32Array, f: out.f!.data as Float32Array };
    } finally {
      await session.release();
    }
  };
  /** x · Wᵀ for W [out, in]. */
  const linear = (w: Float32Array, out: number) => {
    const y = new Float32Array(5 * out);
    for (let r = 0; r < 5; r++) for (let o = 0; o < out; o++) for (let j = 0; j < IN; j++) y[r * out + o]! += x[r * IN + j]! * w[o * IN + j]!;
    return y;
  };

  it.each(STYLES.flatMap((style) => FORMATS.map((format) => [style, format] as const)))('%s export, %s keys: every module patches its own weight, in the layout the graph stores it', async (style, format) => {
    const exported = exportGraph(style);
    const adapter = adapterFor(format);
    const half = style === 'float16';
    const file = path.join(dir, `${style}-${format}.onnx`);
    await fs.writeFile(file, exported.bytes);
    const patcher = loraPatcher(adapter, WEIGHT, { file: 'unet/model.onnx', ...OPTIONS });
    const opened = await patcher.open(file);
    await opened.dispose();
    const merged = { sync: mergeLora(exported.bytes, adapter, WEIGHT, OPTIONS), file: { bytes: opened.bytes, ...patcher.report() } };
    for (const result of Object.values(merged)) {
      expect(result.unmatched).toEqual([]);
      expect(result.matched.map((m) => m.initializer).sort()).toEqual(KEYS.map((k) => exported.weights[k].name).sort());
      for (const k of KEYS) {
        const want = expected(adapter, k, exported.weights[k].transposed);
        const rounded = half ? fromHalfArray(toHalfArray(want)) : want;
        expect(maxAbsDiff(weightValues(result.bytes, exported.weights[k].name), rounded), `${k} via ${result === merged.sync ? 'mergeLora' : 'open'}`).toBeLessThan(half ? 2e-3 : 1e-5);
      }
    }
    // What onnxruntime computes with the merged graph is x · (W + ΔW)ᵀ.
    const out = await run(opened.bytes);
    for (const k of ['q', 'f'] as const) {
      const want = linear(expected(adapter, k, false), MODULES[k].out);
      expect(maxAbsDiff(out[k], want)).toBeLessThan(half ? 2e-2 : 1e-4);
      expect(maxAbsDiff(out[k], linear(BASE[k], MODULES[k].out))).toBeGreaterThan(0.05);
    }
  });

  it('refuses a 3×3 LoRA kernel on a 1×1 convolution, and a plain [rank, in] down matrix on a 3×3 one', () => {
    const { bytes } = exportGraph('torchscript');
    const wrongKernel = parseLoraAdapter(loraFile('kohya', { lora_unet_proj_in: { out: 6, in: [4, 3, 3], rank: 2 } }));
    expect(() => mergeLora(bytes, wrongKernel, 1, OPTIONS)).toThrow(/does not fit weight "onnx::Conv_\d+" of shape \[6, 4, 1, 1\]/);
    const flat = parseLoraAdapter(loraFile('kohya', { lora_unet_conv_in: { out: 6, in: [36], rank: 2 } }));
    expect(() => mergeLora(bytes, flat, 1, OPTIONS)).toThrow(/does not fit weight/);
  });

  it('says a transposed MatMul weight is [in, out] when a module does not fit it', () => {
    const { bytes } = exportGraph('torchscript');
    const wide = parseLoraAdapter(loraFile('peft', { 'unet.transformer_blocks.0.ff.net.2': { out: 32, in: [IN], rank: 2 } }));
    expect(() => mergeLora(bytes, wide, 1, OPTIONS)).toThrow(/does not fit weight "onnx::MatMul_\d+" of shape \[32, 48\] \(\[in, out\], as MatMul takes it\)/);
  });

  it('refuses to patch an initializer two modules share', () => {
    const g = new GraphBuilder('shared');
    g.input('x', DataType.FLOAT, [1, IN]);
    const w = g.weight('onnx::MatMul_1', [IN, IN], new SeededRandom(1).normals(IN * IN));
    g.op('MatMul', ['x', w], {}, 'a', { name: '/m/blocks.0/to_q/MatMul' });
    g.op('MatMul', ['x', w], {}, 'b', { name: '/m/blocks.1/to_q/MatMul' });
    g.output('a', DataType.FLOAT, [1, IN]);
    g.output('b', DataType.FLOAT, [1, IN]);
    const lora = parseLoraAdapter(loraFile('peft', { 'unet.blocks.0.to_q': { out: IN, in: [IN], rank: 2 } }));
    expect(() => mergeLora(g.toBytes(), lora, 1, OPTIONS)).toThrow(/is also module "m.blocks.1.to_q"'s, so a LoRA cannot patch one without the other/);
  });

  it('prefers the module the exporter merely prefixed over deeper ones that end alike', () => {
    const g = new GraphBuilder('alike');
    g.input('x', DataType.FLOAT, [1, IN]);
    for (const [i, module] of ['proj_out', 'single_transformer_blocks/0/proj_out'].entries()) {
      g.op('MatMul', ['x', g.weight(`onnx::MatMul_${i}`, [IN, IN], new SeededRandom(i).normals(IN * IN))], {}, `y${i}`, { name: `/t/${module}/MatMul` });
      g.output(`y${i}`, DataType.FLOAT, [1, IN]);
    }
    const lora = parseLoraAdapter(loraFile('peft', { 'transformer.proj_out': { out: IN, in: [IN], rank: 2 } }));
    expect(mergeLora(g.toBytes(), lora, 1, { component: 'transformer' }).matched.map((m) => m.initializer)).toEqual(['onnx::MatMul_0']);
  });
});
