import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type LoraAdapter, parseLoraAdapter } from '../../src/models/lora-adapter.js';
import { loraPatcher, mergeLora } from '../../src/models/lora-merge.js';
import { DataType, GraphBuilder } from '../../src/pipelines/onnx/graph-builder.js';
import { SeededRandom } from '../../src/pipelines/random.js';
import { loraFile } from '../support/lora-files.js';
import { added, type HandTarget, loraDelta, maxAbsDiff, mergeByHand, weightValues } from '../support/lora-math.js';
import { onnxCheckFeeds, runGraph } from '../support/onnx-check.js';
import { SHARED_FIXTURES } from '../support/sd-fixtures.js';

const FLUX = path.join(SHARED_FIXTURES, 'flux-tiny');
const TRANSFORMER = path.join(FLUX, 'transformer', 'model.onnx');
const OPTIONS = { component: 'transformer', prefixes: ['transformer', 'unet', 'diffusion_model'] };
const WEIGHT = 0.8;

/** A MatMul weight of the fixture (stored [in, out]), as its nodes name them: `/t/transformer_blocks.0/attn/to_q/MatMul` uses onnx::MatMul_1073. */
const mm = (n: number, out: number, inner: number, part: Partial<HandTarget> = {}): HandTarget => ({ initializer: `onnx::MatMul_${n}`, transposed: true, out, in: inner, ...part });
/** A Gemm weight of the fixture, kept under its PyTorch name, [out, in]. */
const gemm = (name: string, out: number, inner: number, part: Partial<HandTarget> = {}): HandTarget => ({ initializer: `t.${name}.weight`, transposed: false, out, in: inner, ...part });

/** The fixture's hidden width (and q/k/v width) is 32, its MLP 128. */
const thirds = (first: number) => [0, 1, 2].map((i) => mm(first + i, 32, 32, { upFrom: 32 * i, rows: 32 }));

/** kohya's FLUX LoRA in Black Forest Labs' module names, and where each module lands in the diffusers export, written out from FLUX's architecture. */
const KOHYA: Record<string, { spec: { out: number; in: number[]; rank: number; alpha?: number }; targets: HandTarget[] }> = {
  lora_unet_double_blocks_0_img_attn_qkv: { spec: { out: 96, in: [32], rank: 4, alpha: 2 }, targets: thirds(1073) },
  lora_unet_double_blocks_0_txt_attn_qkv: { spec: { out: 96, in: [32], rank: 2 }, targets: thirds(1076) },
  lora_unet_double_blocks_0_img_attn_proj: { spec: { out: 32, in: [32], rank: 2 }, targets: [mm(1083, 32, 32)] },
  lora_unet_double_blocks_0_img_mlp_0: { spec: { out: 128, in: [32], rank: 2 }, targets: [mm(1085, 128, 32)] },
  lora_unet_double_blocks_0_txt_mlp_2: { spec: { out: 32, in: [128], rank: 2 }, targets: [mm(1088, 32, 128)] },
  lora_unet_double_blocks_0_img_mod_lin: { spec: { out: 192, in: [32], rank: 2 }, targets: [gemm('transformer_blocks.0.norm1.linear', 192, 32)] },
  lora_unet_single_blocks_0_linear1: {
    spec: { out: 224, in: [32], rank: 4, alpha: 8 },
    targets: [mm(1090, 32, 32, { upFrom: 0, rows: 32 }), mm(1091, 32, 32, { upFrom: 32, rows: 32 }), mm(1092, 32, 32, { upFrom: 64, rows: 32 }), mm(1089, 128, 32, { upFrom: 96, rows: 128 })],
  },
  lora_unet_single_blocks_0_linear2: { spec: { out: 32, in: [160], rank: 2 }, targets: [mm(1097, 32, 160)] },
  // BFL's final modulation is (shift, scale), diffusers' norm_out (scale, shift).
  lora_unet_final_layer_adaLN_modulation_1: {
    spec: { out: 64, in: [32], rank: 2 },
    targets: [gemm('norm_out.linear', 64, 32, { upFrom: 0, rows: 32, at: 32 }), gemm('norm_out.linear', 64, 32, { upFrom: 32, rows: 32, at: 0 })],
  },
  lora_unet_img_in: { spec: { out: 32, in: [64], rank: 2 }, targets: [mm(1062, 32, 64)] },
};

const XLABS: typeof KOHYA = {
  'double_blocks.0.processor.qkv_lora1': { spec: { out: 96, in: [32], rank: 4 }, targets: thirds(1073) },
  'double_blocks.0.processor.qkv_lora2': { spec: { out: 96, in: [32], rank: 4 }, targets: thirds(1076) },
  'double_blocks.0.processor.proj_lora1': { spec: { out: 32, in: [32], rank: 4 }, targets: [mm(1083, 32, 32)] },
  'double_blocks.0.processor.proj_lora2': { spec: { out: 32, in: [32], rank: 4 }, targets: [mm(1084, 32, 32)] },
};

function byHand(base: Uint8Array, adapter: LoraAdapter, table: typeof KOHYA, naming: (stem: string) => string): Uint8Array {
  let bytes = base;
  for (const [stem, { targets }] of Object.entries(table)) bytes = mergeByHand(bytes, adapter.modules.find((m) => m.path === naming(stem))!, WEIGHT, targets);
  return bytes;
}

describe.skipIf(!existsSync(TRANSFORMER))('LoRAs on a FLUX transformer exported from diffusers', () => {
  const cases = [
    ['kohya, in Black Forest Labs’ names with fused qkv and linear1', 'kohya', KOHYA, (stem: string) => stem.replace(/^lora_unet_/, '')],
    ['XLabs', 'xlabs', XLABS, (stem: string) => stem],
  ] as const;

  it.each(cases)('%s: lands on the graph’s own (split) modules, with the same weights and output as merging by hand', async (_, format, table, naming) => {
    const base = new Uint8Array(await fs.readFile(TRANSFORMER));
    const adapter = parseLoraAdapter(loraFile(format, Object.fromEntries(Object.entries(table).map(([stem, t]) => [stem, t.spec]))));
    const patcher = loraPatcher(adapter, WEIGHT, { file: 'transformer/model.onnx', ...OPTIONS });
    const patched = await patcher.open(TRANSFORMER);
    await patched.dispose();
    const report = patcher.report();
    expect(report.unmatched).toEqual([]);
    expect(report.partial).toEqual([]);
    const expectedNames = Object.values(table).flatMap((t) => t.targets.map((x) => x.initializer));
    expect(new Set(report.matched.map((m) => m.initializer))).toEqual(new Set(expectedNames));

    const hand = byHand(base, adapter, table, naming);
    for (const name of new Set(expectedNames)) expect(maxAbsDiff(weightValues(patched.bytes, name), weightValues(hand, name)), name).toBeLessThan(1e-5);
    // The JavaScript merge (graphs held in memory) agrees with onnxruntime's (graphs loaded from files).
    expect(maxAbsDiff(weightValues(mergeLora(base, adapter, WEIGHT, OPTIONS).bytes, 'onnx::MatMul_1073'), weightValues(hand, 'onnx::MatMul_1073'))).toBeLessThan(1e-5);

    const feeds = await onnxCheckFeeds(FLUX, 'transformer', 0);
    const [before, after, expected] = [await runGraph(base, feeds), await runGraph(patched.bytes, feeds), await runGraph(hand, feeds)];
    expect(maxAbsDiff(after, expected)).toBeLessThan(1e-4);
    expect(maxAbsDiff(before, after)).toBeGreaterThan(1e-2);
  });

  it('takes diffusers/PEFT `transformer.` keys as they are', async () => {
    const adapter = parseLoraAdapter(loraFile('peft', { 'transformer.single_transformer_blocks.0.proj_mlp': { out: 128, in: [32], rank: 4, alpha: 4 } }));
    const result = mergeLora(new Uint8Array(await fs.readFile(TRANSFORMER)), adapter, 1, OPTIONS);
    expect(result.matched).toEqual([{ module: 'transformer:single_transformer_blocks.0.proj_mlp', initializer: 'onnx::MatMul_1089', shape: [32, 128] }]);
  });

  it('refuses a fused module the graph has only some parts of, and reports what is missing when partial merges are allowed', () => {
    const g = new GraphBuilder('no-mlp');
    g.input('x', DataType.FLOAT, [1, 32]);
    for (const [i, p] of ['to_q', 'to_k', 'to_v'].entries()) {
      g.op('MatMul', ['x', g.weight(`onnx::MatMul_${i}`, [32, 32], new SeededRandom(i).normals(1024))], {}, p, { name: `/t/single_transformer_blocks.0/attn/${p}/MatMul` });
      g.output(p, DataType.FLOAT, [1, 32]);
    }
    const adapter = parseLoraAdapter(loraFile('kohya', { lora_unet_single_blocks_0_linear1: { out: 224, in: [32], rank: 2 } }));
    expect(() => mergeLora(g.toBytes(), adapter, 1, OPTIONS)).toThrow(
      `1 of the LoRA's transformer modules match only in part, for example "unet:single_blocks_0_linear1", whose part "single_transformer_blocks.0.proj_mlp" the graph does not have, so it would apply only in part.`,
    );
    const partial = mergeLora(g.toBytes(), adapter, 1, { ...OPTIONS, allowPartial: true });
    expect(partial.partial).toEqual([{ module: 'unet:single_blocks_0_linear1', missing: ['single_transformer_blocks.0.proj_mlp'] }]);
    expect(partial.matched.map((m) => m.initializer)).toEqual(['onnx::MatMul_0', 'onnx::MatMul_1', 'onnx::MatMul_2']);
  });
});

describe('LoRAs in diffusers’ names on a FLUX graph in Black Forest Labs’ own, fused names', () => {
  const H = 32;
  const shapes = { 'double_blocks.0.img_attn.qkv': 3 * H, 'single_blocks.0.linear1': 3 * H + 4 * H, 'final_layer.adaLN_modulation.1': 2 * H } as const;
  const base = Object.fromEntries(Object.entries(shapes).map(([name, rows], i) => [name, new SeededRandom(40 + i).normals(rows * H, 0.3)])) as Record<keyof typeof shapes, Float32Array>;
  const graph = (() => {
    const g = new GraphBuilder('bfl');
    g.input('x', DataType.FLOAT, [1, H]);
    for (const [name, rows] of Object.entries(shapes)) {
      g.op('Gemm', ['x', g.weight(`${name}.weight`, [rows, H], base[name as keyof typeof shapes])], { transB: 1 }, name);
      g.output(name, DataType.FLOAT, [1, rows]);
    }
    return g.toBytes();
  })();
  const adapter = parseLoraAdapter(
    loraFile('peft', {
      'transformer.transformer_blocks.0.attn.to_q': { out: H, in: [H], rank: 2 },
      'transformer.transformer_blocks.0.attn.to_k': { out: H, in: [H], rank: 3, alpha: 1 },
      'transformer.transformer_blocks.0.attn.to_v': { out: H, in: [H], rank: 4 },
      'transformer.single_transformer_blocks.0.attn.to_v': { out: H, in: [H], rank: 2 },
      'transformer.single_transformer_blocks.0.proj_mlp': { out: 4 * H, in: [H], rank: 2 },
      'transformer.norm_out.linear': { out: 2 * H, in: [H], rank: 2 },
    }),
  );
  const delta = (path: string, from?: number, count?: number) => loraDelta(adapter.modules.find((m) => m.path === path)!, 1, from, count);

  it('joins each module into its rows of the fused weight, swapping the final modulation’s halves', () => {
    const merged = mergeLora(graph, adapter, 1, { component: 'transformer' });
    expect(merged.unmatched).toEqual([]);
    const rows = (name: keyof typeof shapes, parts: Float32Array[]) => {
      const full = new Float32Array(shapes[name] * H);
      let at = 0;
      for (const p of parts) {
        full.set(p, at);
        at += p.length;
      }
      return added(base[name], full);
    };
    const zeros = (n: number) => new Float32Array(n * H);
    const want = {
      'double_blocks.0.img_attn.qkv': rows('double_blocks.0.img_attn.qkv', [delta('transformer_blocks.0.attn.to_q'), delta('transformer_blocks.0.attn.to_k'), delta('transformer_blocks.0.attn.to_v')]),
      'single_blocks.0.linear1': rows('single_blocks.0.linear1', [zeros(2 * H), delta('single_transformer_blocks.0.attn.to_v'), delta('single_transformer_blocks.0.proj_mlp')]),
      'final_layer.adaLN_modulation.1': rows('final_layer.adaLN_modulation.1', [delta('norm_out.linear', H, H), delta('norm_out.linear', 0, H)]),
    };
    for (const [name, values] of Object.entries(want)) expect(maxAbsDiff(weightValues(merged.bytes, `${name}.weight`), values), name).toBeLessThan(1e-5);
  });

  it('takes kohya’s fused modules onto the fused weights as they are', () => {
    const kohya = parseLoraAdapter(loraFile('kohya', { lora_unet_single_blocks_0_linear1: { out: 7 * H, in: [H], rank: 2 } }));
    const merged = mergeLora(graph, kohya, 1, OPTIONS);
    expect(merged.matched).toEqual([{ module: 'unet:single_blocks_0_linear1', initializer: 'single_blocks.0.linear1.weight', shape: [7 * H, H] }]);
    expect(maxAbsDiff(weightValues(merged.bytes, 'single_blocks.0.linear1.weight'), added(base['single_blocks.0.linear1'], loraDelta(kohya.modules[0]!, 1)))).toBeLessThan(1e-5);
  });
});
