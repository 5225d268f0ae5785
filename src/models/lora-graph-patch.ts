import fs from 'node:fs/promises';
import path from 'node:path';
import { ProtoWriter, readFields, Wire } from '../pipelines/onnx/protobuf.js';
import { LoraDeltaKernel } from './lora-delta-kernel.js';
import { factorsOf, type WeightJob } from './lora-plan.js';
import { ModelFileError, quoteName } from './model-file-error.js';
import type { GraphInitializer, GraphStructure } from './onnx-graph-structure.js';
import { inspectOnnx, OnnxDataType } from './onnx-model.js';

/**
 * Applies a merge plan to a graph read from its file, the way a pipeline loads it.
 *
 * Weights inside the .onnx file are rewritten in place in its bytes. Weights in external data
 * files (FLUX's transformer keeps ~24 GB there) are read one tensor at a time, merged, and
 * written to a patch file in a scratch folder; the graph is re-encoded so that those tensors
 * point into the patch file and all others still into their own files. onnxruntime refuses
 * external paths that are absolute, climb out with `..` or pass through symbolic links, so
 * every location is rewritten relative to the deepest folder holding both the model and the
 * scratch folder, and the session is told to resolve them there
 * (`session.model_external_initializers_file_folder_path`).
 */

export interface PatchedFile {
  bytes: Uint8Array;
  /** The folder external-data locations in `bytes` are relative to. */
  folder: string;
  /** Removes the patch file, once the session holds the weights. */
  dispose(): Promise<void>;
}

const PATCH_FILE = 'lora-weights.bin';
/** Patched tensors start on page boundaries, so that onnxruntime may map them. */
const ALIGN = 4096;

export async function patchGraphFile(input: {
  bytes: Uint8Array;
  structure: GraphStructure;
  jobs: WeightJob[];
  weight: number;
  graphDir: string;
  scratchDir: string;
}): Promise<PatchedFile> {
  const { bytes, structure, jobs, weight, graphDir } = input;
  const kernel = new LoraDeltaKernel();
  const sources = new Map<string, fs.FileHandle>();
  let scratch: string | undefined;
  let patch: fs.FileHandle | undefined;
  const moved = new Map<GraphInitializer, { offset: number; length: number }>();
  // Reading the next external tensor and writing the last one overlap with merging this one;
  // at most three tensors are in memory at a time.
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    p.then(
      () => inFlight.delete(p),
      () => inFlight.delete(p),
    );
    return p;
  };
  try {
    for (const job of jobs) {
      const t = job.weight.tensor;
      if (t.data.kind !== 'raw' && t.data.kind !== 'float_data') continue;
      const f = factorsOf(job, weight);
      const region = bytes.subarray(t.data.start, t.data.end);
      const values = typedCopy(region, t.dataType === OnnxDataType.FLOAT16);
      await kernel.add(values, f.rows, f.cols, Float32Array.from(f.a), Float32Array.from(f.b));
      region.set(asBytes(values));
    }
    const external = jobs.filter((j) => j.weight.tensor.data.kind === 'external');
    const read = (job: WeightJob) => {
      const t = job.weight.tensor;
      const data = t.data as ExternalData;
      const length = data.length ?? t.dims.reduce((a, b) => a * b, 1) * (t.dataType === OnnxDataType.FLOAT16 ? 2 : 4);
      return track(readExternal(sources, graphDir, t, data.location, data.offset, length));
    };
    let next = external[0] && read(external[0]);
    let written: Promise<void> = Promise.resolve();
    let end = 0;
    for (const [i, job] of external.entries()) {
      const t = job.weight.tensor;
      const merged = await next!;
      next = external[i + 1] && read(external[i + 1]!);
      const f = factorsOf(job, weight);
      await kernel.add(t.dataType === OnnxDataType.FLOAT16 ? new Uint16Array(merged.buffer) : new Float32Array(merged.buffer), f.rows, f.cols, Float32Array.from(f.a), Float32Array.from(f.b));
      scratch ??= await fs.mkdtemp(path.join(input.scratchDir, 'kiln-lora-'));
      patch ??= await fs.open(path.join(scratch, PATCH_FILE), 'w');
      await written;
      const offset = Math.ceil(end / ALIGN) * ALIGN;
      written = track(writeAll(patch, merged, offset));
      end = offset + merged.length;
      moved.set(t, { offset, length: merged.length });
    }
    await written;
    await patch?.close();
    patch = undefined;
    if (!moved.size) return { bytes, folder: graphDir, dispose: async () => {} };
    const realGraphDir = await fs.realpath(graphDir);
    const realScratch = await fs.realpath(scratch!);
    const root = commonFolder(realGraphDir, realScratch);
    // Only the main graph's initializers are relocated; external tensors anywhere else would be lost.
    const relocatable = structure.initializers.filter((t) => t.data.kind === 'external').length;
    if (root !== realGraphDir && inspectOnnx(bytes).externalTensors.length !== relocatable) {
      throw new ModelFileError('The graph keeps external data in constants or subgraphs, which a LoRA merge cannot point elsewhere; export it with all external weights as initializers of the main graph.');
    }
    const rewritten = rewriteExternalData(bytes, structure, (t, data) => {
      const m = moved.get(t);
      if (m) return { location: path.relative(root, path.join(realScratch, PATCH_FILE)), ...m };
      return { location: path.relative(root, path.join(realGraphDir, data.location)), offset: data.offset, length: data.length };
    });
    const made = scratch!;
    return { bytes: rewritten, folder: root, dispose: () => fs.rm(made, { recursive: true, force: true }) };
  } catch (err) {
    await Promise.allSettled(inFlight);
    await patch?.close();
    if (scratch) await fs.rm(scratch, { recursive: true, force: true });
    throw err;
  } finally {
    await Promise.all([...sources.values()].map((h) => h.close()));
    await kernel.release();
  }
}

function typedCopy(region: Uint8Array, half: boolean): Float32Array | Uint16Array {
  const aligned = new Uint8Array(region.length);
  aligned.set(region);
  return half ? new Uint16Array(aligned.buffer) : new Float32Array(aligned.buffer);
}

const asBytes = (a: Float32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

async function readExternal(sources: Map<string, fs.FileHandle>, graphDir: string, t: GraphInitializer, location: string, offset: number, length: number): Promise<Uint8Array> {
  const file = path.resolve(graphDir, location);
  const inside = path.relative(graphDir, file);
  if (!inside || inside.startsWith('..') || path.isAbsolute(inside)) {
    throw new ModelFileError(`Weight ${quoteName(t.name)} names an external data file outside the model's folder.`);
  }
  let handle = sources.get(file);
  if (!handle) {
    handle = await fs.open(file, 'r');
    sources.set(file, handle);
  }
  const out = new Uint8Array(new ArrayBuffer(length));
  for (let done = 0; done < length; ) {
    const { bytesRead } = await handle.read(out, done, length - done, offset + done);
    if (!bytesRead) throw new ModelFileError(`Weight ${quoteName(t.name)} runs past the end of its external data file.`);
    done += bytesRead;
  }
  return out;
}

async function writeAll(handle: fs.FileHandle, data: Uint8Array, position: number) {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** The deepest folder holding both `a` and `b` (absolute paths). */
function commonFolder(a: string, b: string): string {
  const [x, y] = [a.split(path.sep), b.split(path.sep)];
  let i = 0;
  while (i < x.length && i < y.length && x[i] === y[i]) i++;
  return x.slice(0, i).join(path.sep) || path.sep;
}

type ExternalData = Extract<GraphInitializer['data'], { kind: 'external' }>;

/** The model with every main-graph initializer stored externally pointing where `locate` says; all else copied as it is. */
function rewriteExternalData(
  bytes: Uint8Array,
  structure: GraphStructure,
  locate: (t: GraphInitializer, data: ExternalData) => { location: string; offset: number; length: number | null },
): Uint8Array {
  const external = new Map(structure.initializers.filter((t) => t.data.kind === 'external').map((t) => [t.start, t]));
  const model = new ProtoWriter();
  let pos = 0;
  for (const f of readFields(bytes)) {
    const span = bytes.subarray(pos, f.end);
    pos = f.end;
    if (f.field !== 7 || f.wire !== Wire.Bytes) {
      model.raw(span);
      continue;
    }
    const graph = new ProtoWriter();
    let at = f.start;
    for (const g of readFields(bytes, f.start, f.end)) {
      const field = bytes.subarray(at, g.end);
      at = g.end;
      const t = g.field === 5 && g.wire === Wire.Bytes ? external.get(g.start) : undefined;
      if (t?.data.kind === 'external') graph.bytes(5, tensorWithLocation(bytes, g.start, g.end, locate(t, t.data)));
      else graph.raw(field);
    }
    model.bytes(7, graph.finish());
  }
  return model.finish();
}

function tensorWithLocation(bytes: Uint8Array, start: number, end: number, where: { location: string; offset: number; length: number | null }): Uint8Array {
  const w = new ProtoWriter();
  let pos = start;
  for (const f of readFields(bytes, start, end)) {
    const span = bytes.subarray(pos, f.end);
    pos = f.end;
    if (f.field !== 13 && f.field !== 14) w.raw(span);
  }
  const entries: [string, string][] = [
    ['location', where.location],
    ['offset', String(where.offset)],
  ];
  if (where.length !== null) entries.push(['length', String(where.length)]);
  for (const [key, value] of entries) w.message(13, (e) => e.string(1, key).string(2, value));
  return w.varint(14, 1).finish();
}
