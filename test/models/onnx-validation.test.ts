import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelFileError } from '../../src/models/model-file-error.js';
import { inspectOnnx, OnnxDataType, readOnnxModel } from '../../src/models/onnx-model.js';
import { checkExternalData, validateOnnxFile } from '../../src/models/onnx-validation.js';
import { BUILTIN_FILES, buildBuiltinModel, builtinLoraTargets } from '../../src/pipelines/builtin/model-files.js';
import { DataType, GraphBuilder } from '../../src/pipelines/onnx/graph-builder.js';
import { ProtoWriter } from '../../src/pipelines/onnx/protobuf.js';
import { SeededRandom } from '../../src/pipelines/random.js';

const builtin = Object.fromEntries(buildBuiltinModel().map((f) => [f.path, f.bytes]));

/** y = x · W for x [1, 4], with W [4, 4] in an external file at `location`. */
function externalModel(location: string, offset = 0): Uint8Array {
  const g = new GraphBuilder('external');
  const x = g.input('x', DataType.FLOAT, [1, 4]);
  g.op('MatMul', [x, g.externalWeight('w', [4, 4], location, offset)], {}, 'y');
  g.output('y', DataType.FLOAT, [1, 4]);
  return g.toBytes();
}

/** A model whose If node's then-branch holds `tensor` as an initializer. */
function modelWithSubgraph(tensor: (t: ProtoWriter) => void): Uint8Array {
  const branch = (name: string, withTensor: boolean) => (a: ProtoWriter) =>
    a
      .string(1, name)
      .varint(20, 5) // GRAPH
      .message(6, (sub) => {
        sub.string(2, name);
        if (withTensor) sub.message(5, tensor);
      });
  return new ProtoWriter()
    .varint(1, 8)
    .message(7, (g) => {
      g.message(1, (n) => n.string(1, 'c').string(2, 'y').string(3, 'choose').string(4, 'If').message(5, branch('then_branch', true)).message(5, branch('else_branch', false)));
      g.string(2, 'main');
    })
    .message(8, (o) => o.string(1, '').varint(2, 17))
    .finish();
}

const externalTensor = (location: string) => (t: ProtoWriter) =>
  t
    .packedVarints(1, [2])
    .varint(2, OnnxDataType.FLOAT)
    .string(8, 'hidden')
    .message(13, (e) => e.string(1, 'location').string(2, location))
    .varint(14, 1);

describe('ONNX inspection', () => {
  it('reads the built-in model: opsets, inputs and outputs, and every initializer with its shape and data', () => {
    const encoder = inspectOnnx(builtin[BUILTIN_FILES.textEncoder]!);
    expect(encoder.irVersion).toBe(8);
    expect(encoder.opsets).toEqual([{ domain: '', version: 17 }]);
    expect(encoder.inputs).toEqual([{ name: 'token_ids', elemType: OnnxDataType.INT64, shape: ['batch', 32] }]);
    expect(encoder.outputs).toEqual([{ name: 'prompt_embedding', elemType: OnnxDataType.FLOAT, shape: ['batch', 32] }]);

    const bytes = builtin[BUILTIN_FILES.denoiser]!;
    const denoiser = inspectOnnx(bytes);
    expect(denoiser.inputs.map((v) => v.name)).toEqual(['coords', 'state', 'cond', 'noise_level', 'mix']);
    const byName = new Map(denoiser.initializers.map((t) => [t.name, t]));
    for (const [module, shape] of Object.entries(builtinLoraTargets)) {
      expect(byName.get(`${module}.weight`), module).toMatchObject({ dims: shape, dataType: OnnxDataType.FLOAT, scope: '', data: { kind: 'raw' } });
    }
    for (const t of denoiser.initializers) {
      if (t.data.kind !== 'raw') throw new Error(`${t.name} is not raw`);
      expect(t.data.end - t.data.start, t.name).toBe(t.dims.reduce((a, b) => a * b, 1) * 4);
    }
    // The byte range is where the values are: freq_base is the scalar 1.
    const freq = byName.get('freq_base')!.data as { start: number };
    expect(new DataView(bytes.buffer, bytes.byteOffset + freq.start, 4).getFloat32(0, true)).toBe(1);
    expect(denoiser.externalTensors).toEqual([]);
  });

  it('finds initializers and external data inside subgraphs', () => {
    const info = inspectOnnx(modelWithSubgraph(externalTensor('w.bin')));
    expect(info.initializers).toEqual([
      { name: 'hidden', dims: [2], dataType: OnnxDataType.FLOAT, scope: 'choose.then_branch', data: { kind: 'external', location: 'w.bin', offset: 0, length: null } },
    ]);
    expect(info.externalTensors.map((t) => t.name)).toEqual(['hidden']);
  });

  it('refuses garbage, truncated models and non-models with a clear error', () => {
    const random = new Uint8Array(new SeededRandom(7).normals(1024).buffer);
    const denoiser = builtin[BUILTIN_FILES.denoiser]!;
    const cases = [random, new TextEncoder().encode('hello, this is not a model'), new Uint8Array(0), denoiser.subarray(0, denoiser.length / 2), Uint8Array.of(0x89, 0x50, 0x4e, 0x47)];
    for (const bytes of cases) {
      expect(() => inspectOnnx(bytes)).toThrow(ModelFileError);
      expect(() => inspectOnnx(bytes)).toThrow(/^Not a valid ONNX model: /);
    }
  });

  it('refuses a file of 2 GiB or more without reading it', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-onnx-big-'));
    try {
      const file = path.join(dir, 'model.onnx');
      await fs.writeFile(file, '');
      await fs.truncate(file, 2 ** 31); // sparse: no disk used
      await expect(readOnnxModel(file)).rejects.toThrow(/protobuf cannot hold 2 GiB/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ONNX external-data paths', () => {
  let root: string;
  let modelDir: string;
  const weights = new SeededRandom(3).normals(16);
  const save = async (bytes: Uint8Array, name = 'model.onnx') => {
    const file = path.join(modelDir, name);
    await fs.writeFile(file, bytes);
    return file;
  };

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-onnx-external-'));
    modelDir = path.join(root, 'model');
    await fs.mkdir(path.join(modelDir, 'data'), { recursive: true });
    await fs.mkdir(path.join(root, 'outside'));
    await fs.writeFile(path.join(root, 'outside', 'secret.bin'), new Uint8Array(4096));
    await fs.writeFile(path.join(modelDir, 'data', 'weights.bin'), new Uint8Array(weights.buffer));
    await fs.symlink(path.join(root, 'outside', 'secret.bin'), path.join(modelDir, 'link.bin'));
    await fs.symlink(path.join(root, 'outside'), path.join(modelDir, 'linked-dir'));
    await fs.symlink(path.join(root, 'outside', 'not-yet.bin'), path.join(modelDir, 'dangling.bin'));
    await fs.symlink('weights.bin', path.join(modelDir, 'data', 'alias.bin'));
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('accepts a model whose external file lies in its folder, and ONNX Runtime runs it', async () => {
    const file = await save(externalModel('data/weights.bin'));
    const info = await validateOnnxFile(file, { checkFiles: true });
    expect(info.externalTensors.map((t) => t.data)).toEqual([{ kind: 'external', location: 'data/weights.bin', offset: 0, length: 64 }]);
    await validateOnnxFile(await save(externalModel('./data/../data/alias.bin'), 'alias.onnx'), { checkFiles: true });

    const session = await ort.InferenceSession.create(file);
    try {
      const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, 0, 0, 0), [1, 4]) });
      expect(Array.from(out.y!.data as Float32Array)).toEqual(Array.from(weights.subarray(0, 4)));
    } finally {
      await session.release();
    }
  });

  const escaping: [string, RegExp][] = [
    ['../x.bin', /leaves the model folder/],
    ['data/../../outside/secret.bin', /leaves the model folder/],
    ['/etc/passwd', /is an absolute path/],
    ['C:/Windows/win.ini', /drive letter/],
    ['..\\outside\\secret.bin', /backslash/],
    ['data/weights.bin\0.txt', /NUL character/],
    ['.', /leaves the model folder/],
    ['', /is empty/],
    ['*/_ORT_MEM_ADDR_/*', /in-memory tag/],
    ['link.bin', /outside the model folder/],
    ['linked-dir/secret.bin', /outside the model folder/],
    ['linked-dir/not-there.bin', /outside the model folder/],
    ['dangling.bin', /symbolic link that cannot be resolved/],
  ];

  it.each(escaping)('refuses the external-data location %j', async (location, message) => {
    const file = await save(externalModel(location), 'escaping.onnx');
    await expect(validateOnnxFile(file)).rejects.toThrow(ModelFileError);
    await expect(validateOnnxFile(file)).rejects.toThrow(message);
  });

  it('refuses an escaping location inside a subgraph', async () => {
    const file = await save(modelWithSubgraph(externalTensor('../outside/secret.bin')), 'subgraph.onnx');
    await expect(validateOnnxFile(file)).rejects.toThrow(/"hidden" has external data at "..\/outside\/secret.bin", which leaves the model folder/);
  });

  it('with checkFiles, refuses missing files, folders and files too short for offset + length', async () => {
    await expect(validateOnnxFile(await save(externalModel('data/missing.bin'), 'missing.onnx'))).resolves.toBeDefined();
    await expect(validateOnnxFile(await save(externalModel('data/missing.bin'), 'missing.onnx'), { checkFiles: true })).rejects.toThrow(/names a file that is not in the model folder/);
    await expect(validateOnnxFile(await save(externalModel('data'), 'folder.onnx'), { checkFiles: true })).rejects.toThrow(/not a regular file/);
    await expect(validateOnnxFile(await save(externalModel('data/weights.bin', 8), 'short.onnx'), { checkFiles: true })).rejects.toThrow(
      /needs bytes up to 72 of a 64-byte file/,
    );
  });

  it('checks against the folder it is given, not the one the file happens to be in', async () => {
    const { info } = await readOnnxModel(await save(externalModel('data/weights.bin')));
    await expect(checkExternalData(info, path.join(modelDir, 'data'), { checkFiles: true })).rejects.toThrow(/not in the model folder/);
    await expect(checkExternalData(info, modelDir, { checkFiles: true })).resolves.toBeUndefined();
  });
});
