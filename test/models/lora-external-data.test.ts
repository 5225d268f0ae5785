import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLoraAdapter } from '../../src/models/lora-adapter.js';
import { loraPatcher } from '../../src/models/lora-merge.js';
import { inspectOnnx } from '../../src/models/onnx-model.js';
import { fromHalfArray, toHalfArray } from '../../src/pipelines/onnx/float16.js';
import { DataType, GraphBuilder } from '../../src/pipelines/onnx/graph-builder.js';
import { openGraph } from '../../src/pipelines/onnx/graph-session.js';
import { SeededRandom } from '../../src/pipelines/random.js';
import { loraFile } from '../support/lora-files.js';
import { added, loraDelta, maxAbsDiff, transpose } from '../support/lora-math.js';

/**
 * A graph exported as large models are: float16 and float32 weights in an external data file
 * (here one of over 3 GiB, sparse, so that it cannot be read into a buffer whole), plus one
 * weight inside the graph. The LoRA patches three of them; the fourth, at the far end of the
 * file, stays where it is.
 */

const IN = 16;
const FAR = 3 * 2 ** 30;
const LAYERS = {
  a: { module: 'blocks.0.attn.to_q', out: 16, store: 'external-f16', offset: 0 },
  b: { module: 'blocks.0.attn.to_k', out: 24, store: 'external-f32', offset: 4096 },
  c: { module: 'blocks.0.ff.proj', out: 8, store: 'inline', offset: 0 },
  d: { module: 'blocks.1.attn.to_q', out: 16, store: 'external-f16', offset: FAR },
} as const;
type Layer = keyof typeof LAYERS;
const NAMES = Object.keys(LAYERS) as Layer[];
const BASE = Object.fromEntries(NAMES.map((k, i) => [k, new SeededRandom(20 + i).normals(LAYERS[k].out * IN, 0.3)])) as Record<Layer, Float32Array>;

/** The weights as stored: [in, out], float16 ones rounded. */
const stored = (k: Layer) => {
  const t = transpose(BASE[k], LAYERS[k].out, IN);
  return LAYERS[k].store === 'external-f16' ? fromHalfArray(toHalfArray(t)) : t;
};

async function writeModel(dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const g = new GraphBuilder('external');
  g.input('x', DataType.FLOAT, [2, IN]);
  const data = await fs.open(path.join(dir, 'model.onnx_data'), 'w');
  for (const [i, k] of NAMES.entries()) {
    const { module, out, store, offset } = LAYERS[k];
    const name = `onnx::MatMul_${i}`;
    let w: string;
    if (store === 'inline') w = g.weight(name, [IN, out], stored(k));
    else {
      const half = store === 'external-f16';
      const bytes = half ? new Uint8Array(toHalfArray(stored(k)).buffer) : new Uint8Array(stored(k).buffer);
      await data.write(bytes, 0, bytes.length, offset);
      w = g.externalWeight(name, [IN, out], 'model.onnx_data', offset, half ? DataType.FLOAT16 : DataType.FLOAT);
      if (half) w = g.op('Cast', [w], { to: DataType.FLOAT });
    }
    g.op('MatMul', ['x', w], {}, k, { name: `/m/${module.replace(/\.(?=\D)/g, '/')}/MatMul` });
    g.output(k, DataType.FLOAT, [2, out]);
  }
  await data.close();
  await fs.writeFile(path.join(dir, 'model.onnx'), g.toBytes());
  return path.join(dir, 'model.onnx');
}

const lora = parseLoraAdapter(
  loraFile('peft', {
    'unet.blocks.0.attn.to_q': { out: 16, in: [IN], rank: 4, alpha: 2, dtype: 'F16' },
    'unet.blocks.0.attn.to_k': { out: 24, in: [IN], rank: 2 },
    'unet.blocks.0.ff.proj': { out: 8, in: [IN], rank: 2 },
  }),
);
const WEIGHT = 0.9;
const x = new SeededRandom(5).normals(2 * IN);

/** x · Wᵀ with W = base + the LoRA's delta (for patched layers), W [out, in]. */
function expectedOutput(k: Layer): Float32Array {
  const { module, out } = LAYERS[k];
  const m = lora.modules.find((mm) => mm.path === module);
  const w = transpose(stored(k), IN, out);
  const merged = m ? added(w, loraDelta(m, WEIGHT)) : w;
  const y = new Float32Array(2 * out);
  for (let r = 0; r < 2; r++) for (let o = 0; o < out; o++) for (let j = 0; j < IN; j++) y[r * out + o]! += x[r * IN + j]! * merged[o * IN + j]!;
  return y;
}

async function outputs(session: ort.InferenceSession) {
  try {
    const out = await session.run({ x: new ort.Tensor('float32', x, [2, IN]) });
    return Object.fromEntries(NAMES.map((k) => [k, out[k]!.data as Float32Array])) as Record<Layer, Float32Array>;
  } finally {
    await session.release();
  }
}

describe('merging into weights kept in external data files', () => {
  let root: string;
  let graph: string;
  let scratch: string;
  let dataSha: string;
  const sha = async (file: string) => crypto.createHash('sha256').update(await fs.readFile(file)).digest('hex');

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-lora-external-'));
    graph = await writeModel(path.join(root, 'model', 'unet'));
    scratch = path.join(root, 'scratch');
    await fs.mkdir(scratch);
    const handle = await fs.open(path.join(root, 'model', 'unet', 'model.onnx_data'), 'r');
    // Hashing 3 GiB is slow: the ends and the patched ranges are what could change.
    const head = new Uint8Array(65536);
    await handle.read(head, 0, head.length, 0);
    const tail = new Uint8Array(IN * 16 * 2);
    await handle.read(tail, 0, tail.length, FAR);
    await handle.close();
    dataSha = crypto.createHash('sha256').update(head).update(tail).digest('hex');
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('patches tensor by tensor into a patch file, points only the patched tensors at it, and leaves the model’s files alone', async () => {
    const graphSha = await sha(graph);
    const patcher = loraPatcher(lora, WEIGHT, { file: 'unet/model.onnx', scratchDir: scratch });
    const patched = await patcher.open(graph);
    expect(patcher.report().matched.map((m) => m.initializer)).toEqual(['onnx::MatMul_0', 'onnx::MatMul_1', 'onnx::MatMul_2']);

    const locations = Object.fromEntries(
      inspectOnnx(patched.bytes).externalTensors.map((t) => [t.name, t.data.kind === 'external' ? path.join(patched.externalDataFolder, t.data.location) : '']),
    );
    const [made] = await fs.readdir(scratch);
    const patchFile = path.join(await fs.realpath(scratch), made!, 'lora-weights.bin');
    expect(locations).toEqual({
      'onnx::MatMul_0': patchFile,
      'onnx::MatMul_1': patchFile,
      'onnx::MatMul_3': path.join(await fs.realpath(path.dirname(graph)), 'model.onnx_data'),
    });
    // Only the two patched external tensors were written: 512 bytes, then 1536 from the next page.
    expect((await fs.stat(patchFile)).size).toBe(4096 + IN * 24 * 4);

    const session = await ort.InferenceSession.create(patched.bytes, { extra: { session: { model_external_initializers_file_folder_path: patched.externalDataFolder } } });
    await patched.dispose();
    expect(await fs.readdir(scratch)).toEqual([]);
    const out = await outputs(session);
    for (const k of NAMES) expect(maxAbsDiff(out[k], expectedOutput(k)), k).toBeLessThan(k === 'a' ? 1e-2 : 1e-4);

    expect(await sha(graph)).toBe(graphSha);
  });

  it('loads through a pipeline’s graph session with the patch, and the model’s data file is unchanged', async () => {
    const patcher = loraPatcher(lora, WEIGHT, { file: 'unet/model.onnx', scratchDir: scratch });
    const session = await openGraph(path.join(root, 'model'), 'unet/model.onnx', { executionProviders: ['cpu'], graphPatches: [patcher] }, {});
    expect(await fs.readdir(scratch)).toEqual([]);
    const out = await outputs(session);
    for (const k of NAMES) expect(maxAbsDiff(out[k], expectedOutput(k)), k).toBeLessThan(k === 'a' ? 1e-2 : 1e-4);

    const base = await outputs(await openGraph(path.join(root, 'model'), 'unet/model.onnx', { executionProviders: ['cpu'] }, {}));
    expect(maxAbsDiff(base.a, out.a)).toBeGreaterThan(0.05);
    expect(maxAbsDiff(base.d, out.d)).toBe(0);

    const handle = await fs.open(path.join(root, 'model', 'unet', 'model.onnx_data'), 'r');
    const head = new Uint8Array(65536);
    await handle.read(head, 0, head.length, 0);
    const tail = new Uint8Array(IN * 16 * 2);
    await handle.read(tail, 0, tail.length, FAR);
    await handle.close();
    expect(crypto.createHash('sha256').update(head).update(tail).digest('hex')).toBe(dataSha);
  });

  it('keeps the graph’s own folder for external data when only inline weights are patched', async () => {
    const inlineOnly = parseLoraAdapter(loraFile('peft', { 'unet.blocks.0.ff.proj': { out: 8, in: [IN], rank: 2 } }));
    const patched = await loraPatcher(inlineOnly, 1, { file: 'unet/model.onnx', scratchDir: scratch }).open(graph);
    expect(patched.externalDataFolder).toBe(path.dirname(graph));
    expect(patched.bytes.length).toBe((await fs.stat(graph)).size);
    await patched.dispose();
    expect(await fs.readdir(scratch)).toEqual([]);
  });
});
