import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { fromHalfArray, halfBitsToFloat, floatToHalfBits, toHalfArray } from '../../src/pipelines/onnx/float16.js';
import { upcastFloat16Model } from '../../src/pipelines/onnx/float16-upcast.js';
import { DataType, GraphBuilder } from '../../src/pipelines/onnx/graph-builder.js';

const half = (v: number) => halfBitsToFloat(floatToHalfBits(v));
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true }))));

/** x · 300 · 300 · 0.001 with float16 weights, a float16 Cast and float16 boundaries: 90000 in between is past float16's range. */
function halfGraph(): Uint8Array {
  const g = new GraphBuilder('half');
  g.input('x', DataType.FLOAT16, [1, 'n']);
  const big = g.halfWeight('big', [], Float32Array.of(300));
  const squared = g.op('Mul', [g.op('Mul', ['x', big]), big], {}, 'squared');
  const scaled = g.op('Mul', [squared, g.halfWeight('small', [], Float32Array.of(0.001))]);
  g.op('Cast', [g.op('Cast', [scaled], { to: DataType.FLOAT })], { to: DataType.FLOAT16 }, 'y');
  g.op('Identity', [squared], {}, 'intermediate');
  g.output('y', DataType.FLOAT16, [1, 'n']);
  g.output('intermediate', DataType.FLOAT16, [1, 'n']);
  return g.toBytes();
}

describe('upcasting a float16 model to float32', () => {
  it('computes the same function with float32 boundaries, weights and casts, without overflowing where float16 does', async () => {
    const bytes = halfGraph();
    const x = [1, 2, -1];
    const original = await ort.InferenceSession.create(bytes);
    const before = await original.run({ x: new ort.Tensor('float16', toHalfArray(x), [1, 3]) });
    expect(Array.from(fromHalfArray(before.intermediate!.data as Uint16Array))).toEqual([Infinity, Infinity, -Infinity]);
    await original.release();

    const { changed, bytes: upcast } = upcastFloat16Model(bytes, os.tmpdir());
    expect(changed).toBe(true);
    const session = await ort.InferenceSession.create(upcast);
    expect(session.inputMetadata.map((m) => (m.isTensor ? m.type : null))).toEqual(['float32']);
    expect(session.outputMetadata.map((m) => (m.isTensor ? m.type : null))).toEqual(['float32', 'float32']);
    const after = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x), [1, 3]) });
    // The weights keep their float16 values (0.001 is 0.0010004… in half precision), as diffusers' upcast does.
    const expected = x.map((v) => v * 300 * 300 * half(0.001));
    Array.from(after.y!.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 3));
    expect(Array.from(after.intermediate!.data as Float32Array)).toEqual(x.map((v) => v * 90000));
    await session.release();
  });

  it('leaves a model with nothing in float16 as it is', () => {
    const g = new GraphBuilder('float');
    g.input('x', DataType.FLOAT, [1]);
    g.op('Mul', ['x', g.scalar('two', 2)], {}, 'y');
    g.output('y', DataType.FLOAT, [1]);
    const bytes = g.toBytes();
    const result = upcastFloat16Model(bytes, os.tmpdir());
    expect(result.changed).toBe(false);
    expect(result.bytes).toBe(bytes);
  });

  it('writes weights kept in external data files into the model, so it runs from bytes', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-upcast-'));
    dirs.push(dir);
    await fs.writeFile(path.join(dir, 'weights.bin'), new Uint8Array(Float32Array.of(0, 0, 1.5, -2).buffer));
    const g = new GraphBuilder('external');
    g.input('x', DataType.FLOAT16, [2]);
    const w = g.externalWeight('w', [2], 'weights.bin', 8);
    g.op('Cast', [g.op('Mul', [g.op('Cast', ['x'], { to: DataType.FLOAT }), w])], { to: DataType.FLOAT16 }, 'y');
    g.output('y', DataType.FLOAT16, [2]);
    const { bytes } = upcastFloat16Model(g.toBytes(), dir);
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(2, 3), [2]) });
    expect(Array.from(out.y!.data as Float32Array)).toEqual([3, -6]);
    await session.release();
  });

  it('refuses external data outside the model folder', () => {
    const g = new GraphBuilder('escape');
    g.input('x', DataType.FLOAT16, [1]);
    g.op('Mul', [g.op('Cast', ['x'], { to: DataType.FLOAT }), g.externalWeight('w', [1], '../elsewhere.bin')], {}, 'y');
    g.output('y', DataType.FLOAT, [1]);
    expect(() => upcastFloat16Model(g.toBytes(), path.join(os.tmpdir(), 'model'))).toThrow(/outside the model's folder/);
  });
});
