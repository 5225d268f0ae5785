import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { floatToHalfBits, halfBitsToFloat } from '../../src/pipelines/onnx/float16.js';
import { type LoraAdapter, parseLoraAdapter } from '../../src/models/lora-adapter.js';
import { loraPatcher, mergeLora } from '../../src/models/lora-merge.js';
import { ModelFileError } from '../../src/models/model-file-error.js';
import { inspectOnnx, OnnxDataType, type OnnxTensor } from '../../src/models/onnx-model.js';
import { type TensorToWrite, writeSafetensors } from '../../src/models/safetensors.js';
import { ProtoWriter } from '../../src/pipelines/onnx/protobuf.js';
import { SeededRandom } from '../../src/pipelines/random.js';

const UNET = '/work/shared/fixtures/sd-tiny/unet/model.onnx';

interface GraphTensor {
  name: string;
  dims: number[];
  values?: Float32Array;
  storage?: 'raw' | 'float_data' | 'float16' | 'external';
}

/** A model that is nothing but initializers, stored the ways ONNX allows. */
function graphOf(tensors: GraphTensor[]): Uint8Array {
  return new ProtoWriter()
    .varint(1, 8)
    .message(7, (g) => {
      g.string(2, 'weights');
      for (const t of tensors) {
        const values = t.values ?? new Float32Array(t.dims.reduce((a, b) => a * b, 1)).fill(0.25);
        g.message(5, (m) => {
          m.packedVarints(1, t.dims).string(8, t.name);
          const storage = t.storage ?? 'raw';
          m.varint(2, storage === 'float16' ? OnnxDataType.FLOAT16 : OnnxDataType.FLOAT);
          if (storage === 'raw') m.bytes(9, new Uint8Array(values.buffer));
          if (storage === 'float16') m.bytes(9, new Uint8Array(Uint16Array.from(values, floatToHalfBits).buffer));
          if (storage === 'float_data') m.bytes(4, new Uint8Array(values.buffer)); // packed repeated float
          if (storage === 'external') m.message(13, (e) => e.string(1, 'location').string(2, 'weights.bin')).varint(14, 1);
        });
      }
    })
    .message(8, (o) => o.string(1, '').varint(2, 17))
    .finish();
}

/** Random down/up matrices for each module, under kohya or PEFT keys. */
function adapter(format: 'kohya' | 'peft', modules: Record<string, { out: number; in: number[]; rank: number; alpha?: number }>, seed = 1): Uint8Array {
  const rng = new SeededRandom(seed, 9);
  const tensors: Record<string, TensorToWrite> = {};
  for (const [path, m] of Object.entries(modules)) {
    const key = format === 'kohya' ? `lora_unet_${path.replaceAll('.', '_')}` : `unet.${path}`;
    const [down, up] = format === 'kohya' ? ['lora_down', 'lora_up'] : ['lora_A', 'lora_B'];
    const inner = m.in.reduce((a, b) => a * b, 1);
    tensors[`${key}.${down}.weight`] = { dtype: 'F32', shape: [m.rank, ...m.in], data: rng.normals(m.rank * inner, 0.5) };
    tensors[`${key}.${up}.weight`] = { dtype: 'F32', shape: m.in.length > 1 ? [m.out, m.rank, 1, 1] : [m.out, m.rank], data: rng.normals(m.out * m.rank, 0.5) };
    if (m.alpha !== undefined) tensors[`${key}.alpha`] = { dtype: 'F32', shape: [], data: Float32Array.of(m.alpha) };
  }
  return writeSafetensors(tensors);
}

const valuesOf = (bytes: Uint8Array, t: OnnxTensor): Float32Array => {
  if (t.data.kind !== 'raw' && t.data.kind !== 'float_data') throw new Error(`${t.name} is not inline`);
  const slice = bytes.slice(t.data.start, t.data.end);
  return t.dataType === OnnxDataType.FLOAT16 ? Float32Array.from(new Uint16Array(slice.buffer), halfBitsToFloat) : new Float32Array(slice.buffer);
};

/** weight · (alpha / rank) · up · down, the textbook way. */
function expectedDelta(a: LoraAdapter, path: string, weight: number): Float32Array {
  const m = a.modules.find((x) => x.path === path)!;
  const out = m.up.shape[0]!;
  const inner = m.down.data.length / m.rank;
  const delta = new Float32Array(out * inner);
  for (let o = 0; o < out; o++)
    for (let j = 0; j < inner; j++) {
      let sum = 0;
      for (let k = 0; k < m.rank; k++) sum += m.up.data[o * m.rank + k]! * m.down.data[k * inner + j]!;
      delta[o * inner + j] = (weight * m.alpha * sum) / m.rank;
    }
  return delta;
}

const refusal = (fn: () => unknown): ModelFileError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ModelFileError);
    return err as ModelFileError;
  }
  throw new Error('not refused');
};

describe('merging a LoRA into a graph', () => {
  const base = graphOf([
    { name: 'model.blocks.0.proj.weight', dims: [6, 5], values: new SeededRandom(1).normals(30) },
    { name: 'model.blocks.0.conv.weight', dims: [4, 3, 3, 3], values: new SeededRandom(2).normals(108), storage: 'float_data' },
    { name: 'model.blocks.0.half.weight', dims: [4, 4], values: new SeededRandom(3).normals(16), storage: 'float16' },
    { name: 'model.blocks.0.proj.bias', dims: [6] },
  ]);
  const lora = parseLoraAdapter(
    adapter('peft', {
      'blocks.0.proj': { out: 6, in: [5], rank: 2, alpha: 1 },
      'blocks.0.conv': { out: 4, in: [3, 3, 3], rank: 3 },
      'blocks.0.half': { out: 4, in: [4], rank: 2, alpha: 4 },
    }),
  );

  it('adds weight · (alpha / rank) · up · down to float32 raw_data, packed float_data and float16 weights', () => {
    const result = mergeLora(base, lora, 0.7, { component: 'unet' });
    expect(result.matched.map((m) => [m.module, m.initializer, m.shape])).toEqual([
      ['unet:blocks.0.proj', 'model.blocks.0.proj.weight', [6, 5]],
      ['unet:blocks.0.conv', 'model.blocks.0.conv.weight', [4, 3, 3, 3]],
      ['unet:blocks.0.half', 'model.blocks.0.half.weight', [4, 4]],
    ]);
    expect(result.unmatched).toEqual([]);
    expect(result.bytes.length).toBe(base.length);
    const before = new Map(inspectOnnx(base).initializers.map((t) => [t.name, t]));
    for (const t of inspectOnnx(result.bytes).initializers) {
      const merged = valuesOf(result.bytes, t);
      const original = valuesOf(base, before.get(t.name)!);
      if (t.name.endsWith('.bias')) {
        expect(merged).toEqual(original);
        continue;
      }
      const delta = expectedDelta(lora, t.name.replace(/^model\.(.*)\.weight$/, '$1'), 0.7);
      const tolerance = t.dataType === OnnxDataType.FLOAT16 ? 4e-3 : 1e-6;
      merged.forEach((v, i) => expect(Math.abs(v - (original[i]! + delta[i]!)), `${t.name}[${i}]`).toBeLessThan(tolerance * Math.max(1, Math.abs(v))));
    }
  });

  it('leaves the base untouched: weight 0 gives the base bytes, the same merge twice the same bytes, and a merge after another equals it alone', () => {
    const copy = base.slice();
    expect(mergeLora(base, lora, 0, { component: 'unet' }).bytes).toEqual(base);
    const once = mergeLora(base, lora, 1, { component: 'unet' }).bytes;
    expect(mergeLora(base, lora, 1, { component: 'unet' }).bytes).toEqual(once);
    const other = parseLoraAdapter(adapter('kohya', { 'blocks.0.proj': { out: 6, in: [5], rank: 1 } }, 2));
    const patcher = loraPatcher(other, 1, { file: 'unet/model.onnx' });
    const afterOther = patcher.apply(base);
    expect(afterOther).not.toEqual(once);
    expect(loraPatcher(lora, 1, { file: 'unet/model.onnx' }).apply(base)).toEqual(once);
    expect(base).toEqual(copy);
  });

  it('names its own file, takes its component from the file name, and reports what it did', () => {
    const patcher = loraPatcher(lora, 1, { file: './unet//model.onnx' });
    expect(patcher.file).toBe('unet/model.onnx');
    expect(() => patcher.report()).toThrow(/never loaded/);
    expect(patcher.apply(base)).not.toEqual(base);
    const report = patcher.report();
    expect(report.matched).toHaveLength(3);
    expect(report.mergeMs).toBeGreaterThan(0);
    expect(() => loraPatcher(lora, 1, { file: 'denoiser.onnx' }).apply(base)).toThrow(/The LoRA has no modules for the denoiser; its modules are for: unet/);
  });

  it('refuses an adapter that names nothing in the graph, saying what it looked for', () => {
    const stranger = parseLoraAdapter(adapter('peft', { 'down_blocks.9.attn.to_q': { out: 6, in: [5], rank: 2 } }));
    const err = refusal(() => mergeLora(base, stranger, 1, { component: 'unet' }));
    expect(err.message).toBe(`None of the LoRA's 1 unet modules matches a weight of this graph (looked for weights named like "down_blocks.9.attn.to_q.weight", under any prefix).`);
  });

  it('points at constant folding when the graph renamed its MatMul weights', () => {
    const folded = graphOf([{ name: 'onnx::MatMul_1234', dims: [5, 6] }]);
    expect(refusal(() => mergeLora(folded, lora, 1, { component: 'unet' })).message).toMatch(/renamed its MatMul weights .* constant folding/);
  });

  it('refuses a LoRA that would apply only in part, unless partial merges are allowed, then reports what did not match', () => {
    const partly = parseLoraAdapter(adapter('peft', { 'blocks.0.proj': { out: 6, in: [5], rank: 2 }, 'blocks.7.proj': { out: 6, in: [5], rank: 2 } }));
    expect(refusal(() => mergeLora(base, partly, 1, { component: 'unet' })).message).toBe(
      `1 of the LoRA's 2 unet modules match no weight of the graph, for example "unet:blocks.7.proj", so it would apply only in part.`,
    );
    const result = mergeLora(base, partly, 1, { component: 'unet', allowPartial: true });
    expect(result.matched.map((m) => m.module)).toEqual(['unet:blocks.0.proj']);
    expect(result.unmatched).toEqual(['unet:blocks.7.proj']);
  });

  it('refuses graphs with external data, whose paths onnxruntime would resolve against the working directory once merged', () => {
    for (const target of ['blocks.0.proj.weight', 'unrelated.weight']) {
      const external = graphOf([
        { name: 'model.blocks.0.proj.weight', dims: [6, 5] },
        { name: target, dims: [6, 5], storage: 'external' },
      ]);
      expect(refusal(() => mergeLora(external, lora, 1, { component: 'unet', allowPartial: true })).message).toMatch(/keeps weights such as ".*" in external data files/);
    }
  });

  it('refuses modules that do not fit their weight, and ambiguous kohya names', () => {
    const wrongShape = parseLoraAdapter(adapter('peft', { 'blocks.0.proj': { out: 6, in: [7], rank: 2 } }));
    expect(refusal(() => mergeLora(base, wrongShape, 1, { component: 'unet' })).message).toMatch(/does not fit weight "model.blocks.0.proj.weight" of shape \[6, 5\]/);
    const wrongKernel = parseLoraAdapter(adapter('peft', { 'blocks.0.conv': { out: 4, in: [27, 1, 1], rank: 2 } }));
    expect(refusal(() => mergeLora(base, wrongKernel, 1, { component: 'unet' })).message).toMatch(/does not fit/);


    const twins = graphOf([
      { name: 'a_b.c.weight', dims: [6, 5] },
      { name: 'a.b_c.weight', dims: [6, 5] },
    ]);
    const kohya = parseLoraAdapter(adapter('kohya', { a_b_c: { out: 6, in: [5], rank: 1 } }));
    expect(refusal(() => mergeLora(twins, kohya, 1, { component: 'unet' })).message).toMatch(/matches several weights of the graph \("a_b.c.weight", "a.b_c.weight"\)/);
    const peft = parseLoraAdapter(adapter('peft', { 'a.b_c': { out: 6, in: [5], rank: 1 } }));
    expect(mergeLora(twins, peft, 1, { component: 'unet' }).matched.map((m) => m.initializer)).toEqual(['a.b_c.weight']);
  });
});

describe.skipIf(!existsSync(UNET))('merging into a Stable Diffusion UNet exported from diffusers', () => {
  const modules = {
    'down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q': { out: 64, in: [64], rank: 4, alpha: 2 },
    'down_blocks.1.resnets.0.conv1': { out: 64, in: [32, 3, 3], rank: 4 },
  };

  const feeds = {
    sample: new ort.Tensor('float32', new SeededRandom(5).normals(4 * 8 * 8), [1, 4, 8, 8]),
    timestep: new ort.Tensor('int64', BigInt64Array.of(500n), [1]),
    encoder_hidden_states: new ort.Tensor('float32', new SeededRandom(6).normals(77 * 32), [1, 77, 32]),
  };
  const run = async (bytes: Uint8Array) => {
    const session = await ort.InferenceSession.create(bytes);
    try {
      return (await session.run(feeds)).out_sample!.data as Float32Array;
    } finally {
      await session.release();
    }
  };
  let baseOutput: Promise<Float32Array> | undefined;

  /** The byte ranges where two versions of a file differ, as the initializers whose data they fall in. */
  const changed = (a: Uint8Array, b: Uint8Array) => {
    const spans = inspectOnnx(a).initializers.flatMap((t) => (t.data.kind === 'raw' ? [{ name: t.name, ...t.data }] : []));
    const where = new Set<string>();
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) where.add(spans.find((s) => i >= s.start && i < s.end)?.name ?? `byte ${i}, outside every weight`);
    }
    return [...where];
  };

  it.each(['kohya', 'peft'] as const)('matches %s-named modules to exactly their weights, and the merged UNet runs differently', async (format) => {
    const unet = new Uint8Array(await fs.readFile(UNET));
    const lora = parseLoraAdapter(adapter(format, modules));
    const result = mergeLora(unet, lora, 1, { component: 'unet' });
    const names = Object.keys(modules).map((m) => `m.${m}.weight`);
    expect(result.matched.map((m) => m.initializer)).toEqual(names);
    expect(result.unmatched).toEqual([]);
    expect(result.bytes.length).toBe(unet.length);
    expect(changed(unet, result.bytes)).toEqual(names);

    baseOutput ??= run(unet);
    const [before, after] = [await baseOutput, await run(result.bytes)];
    const meanChange = before.reduce((s, v, i) => s + Math.abs(v - after[i]!), 0) / before.length;
    expect(meanChange).toBeGreaterThan(1e-3);
  });

  it('skips text-encoder modules and refuses an adapter with nothing for the UNet', async () => {
    const unet = new Uint8Array(await fs.readFile(UNET));
    const te = writeSafetensors({
      'lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': { dtype: 'F32', shape: [1, 32], data: new Float32Array(32) },
      'lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight': { dtype: 'F32', shape: [32, 1], data: new Float32Array(32) },
    });
    expect(refusal(() => mergeLora(unet, parseLoraAdapter(te), 1, { component: 'unet' })).message).toBe('The LoRA has no modules for the unet; its modules are for: text_encoder.');
  });
});
