import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectOnnx } from '../../src/models/onnx-model.js';
import { DataType, GraphBuilder } from '../../src/pipelines/onnx/graph-builder.js';
import { GraphSummaryError, summarizeGraph } from '../../src/pipelines/onnx/graph-summary.js';
import { DEFAULT_ACTIVATION_FACTOR, ensureMemory, estimateGraphMemory, estimateMemory } from '../../src/pipelines/onnx/memory-estimate.js';
import { writeFluxFixture } from '../support/flux-fixtures.js';
import { SHARED_FIXTURES } from '../support/sd-fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-graph-summary-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

/** x [batch, 4] · w (4×4, inside the file, 4 MiB of padding weight beside it) + b (external, in two files). */
async function writeGraph(): Promise<string> {
  const g = new GraphBuilder('summary');
  g.input('x', DataType.FLOAT16, ['batch', 4]);
  const x = g.op('Cast', ['x'], { to: DataType.FLOAT });
  const y = g.op('MatMul', [x, g.weight('w', [4, 4], new Float32Array(16).fill(0.5))]);
  g.weight('padding', [1024 * 1024], new Float32Array(1024 * 1024));
  const b = g.op('Add', [g.externalWeight('b1', [4], 'one.bin'), g.externalWeight('b2', [2, 4], 'two.bin', 64)]);
  g.op('Add', [y, b], {}, 'y');
  g.output('y', DataType.FLOAT, ['batch', 4]);
  g.rawWeight('scale', [2], DataType.BFLOAT16, new Uint8Array(4));
  const file = path.join(dir, 'model.onnx');
  await fs.writeFile(file, g.toBytes());
  return file;
}

describe('summarizing an ONNX graph from its file', () => {
  it('reads its inputs, outputs, weight types and external bytes, walking past the weights inside it', async () => {
    const file = await writeGraph();
    const summary = await summarizeGraph(file);
    expect(summary.inputs).toEqual([{ name: 'x', elemType: DataType.FLOAT16, shape: ['batch', 4] }]);
    expect(summary.outputs).toEqual([{ name: 'y', elemType: DataType.FLOAT, shape: ['batch', 4] }]);
    expect(Object.fromEntries(summary.weightTypes)).toEqual({ [DataType.FLOAT]: 4, [DataType.BFLOAT16]: 1 });
    expect(Object.fromEntries(summary.externalBytes)).toEqual({ 'one.bin': 16, 'two.bin': 32 });
    expect(summary.fileBytes).toBe((await fs.stat(file)).size);
    expect(summary.fileBytes).toBeGreaterThan(4 * 1024 * 1024);
    expect(summary.foreignDomains).toEqual([]);
  });

  it.skipIf(!existsSync(path.join(SHARED_FIXTURES, 'flux-tiny')) || !existsSync(path.join(SHARED_FIXTURES, 'sd-tiny')))(
    "agrees with the model validator's full parse on the inputs and outputs of diffusers' exports",
    async () => {
      for (const rel of ['flux-tiny/transformer/model.onnx', 'flux-tiny/vae_decoder/model.onnx', 'sd-tiny/unet/model.onnx']) {
        const file = path.join(SHARED_FIXTURES, rel);
        const full = inspectOnnx(new Uint8Array(await fs.readFile(file)));
        const summary = await summarizeGraph(file);
        expect(summary.inputs, rel).toEqual(full.inputs);
        expect(summary.outputs, rel).toEqual(full.outputs);
        expect([...summary.weightTypes.values()].reduce((a, b) => a + b, 0), rel).toBe(full.initializers.filter((t) => t.scope === '').length);
      }
    },
  );

  it('refuses a file that is not an ONNX graph', async () => {
    const file = path.join(dir, 'junk.onnx');
    await fs.writeFile(file, 'this is not protobuf');
    await expect(summarizeGraph(file)).rejects.toBeInstanceOf(GraphSummaryError);
  });
});

describe('estimating the memory a model needs', () => {
  it('counts every graph on the CPU, and only the largest with a device provider first', async () => {
    const model = await writeFluxFixture(path.join(dir, 'flux'), { layout: 'optimum', variant: 'dev', externalWeights: true });
    const graphs = ['text_encoder/model.onnx', 'text_encoder_2/model.onnx', 'transformer/model.onnx', 'vae_decoder/model.onnx'];
    const sizes = await Promise.all(graphs.map(async (g) => (await fs.stat(path.join(model, g))).size));
    const external = (await fs.stat(path.join(model, 'transformer/model.onnx_data'))).size;
    const cpu = await estimateGraphMemory(model, graphs, { executionProviders: ['cpu'] });
    expect(cpu.weightBytes).toBe(sizes.reduce((a, b) => a + b, 0) + external);
    expect(cpu.requiredBytes).toBe(Math.ceil(cpu.weightBytes * DEFAULT_ACTIVATION_FACTOR));
    const cuda = await estimateGraphMemory(model, graphs, { executionProviders: ['cuda', 'cpu'], activationFactor: 2 });
    expect(cuda).toMatchObject({ allResident: false, weightBytes: cpu.weightBytes, requiredBytes: 2 * cuda.largestGraphBytes });
  });

  it('refuses with INSUFFICIENT_MEMORY what does not fit in the memory available, and lets the rest through', () => {
    const estimate = estimateMemory([], { executionProviders: ['cpu'] });
    const big = { ...estimate, weightBytes: 2 ** 33, requiredBytes: 3 * 2 ** 32 };
    expect(() => ensureMemory('this model', big, 3 * 2 ** 32)).not.toThrow();
    expect(() => ensureMemory('this model', big, 2 ** 32)).toThrow(
      expect.objectContaining({ code: 'INSUFFICIENT_MEMORY', message: 'this model needs about 12.0 GiB of memory to load (8.0 GiB of weights × 1.5 for activations), and 4.0 GiB is available' }),
    );
  });
});
