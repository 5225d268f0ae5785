import os from 'node:os';
import fs from 'node:fs/promises';
import path from 'node:path';
import { floatToHalfBits, halfBitsToFloat } from '../pipelines/onnx/float16.js';
import type { GraphPatch, PatchedGraph } from '../pipelines/pipeline.js';
import type { LoraAdapter } from './lora-adapter.js';
import { patchGraphFile } from './lora-graph-patch.js';
import { type Factors, factorsOf, type LoraMergeOptions, type LoraMergeReport, planLoraMerge, type WeightJob } from './lora-plan.js';
import { ModelFileError, quoteName } from './model-file-error.js';
import { bufferSource, readGraphStructure } from './onnx-graph-structure.js';
import { OnnxDataType } from './onnx-model.js';

/**
 * Merges a LoRA into a base ONNX graph: W += weight · (alpha / rank) · up · down for every
 * module whose weight the graph holds (lora-plan.ts says which, lora-graph-weights.ts how
 * weights are found). The base is never modified: the graph for (base, LoRA, weight) is always
 * built from the base, so LoRAs never stack.
 *
 * Two ways in: `mergeLora` on a graph held in memory whose weights are all inside it (values
 * rewritten in a copy, raw_data keeping its length, so nothing is re-encoded; the arithmetic in
 * JavaScript, in double precision, on one thread), and a patcher's `open` on a graph file, the
 * way pipelines load it, which also handles weights in external data files one tensor at a time
 * and does the arithmetic in onnxruntime on every core (lora-graph-patch.ts).
 */

export type { LoraMergeOptions, LoraMergeReport } from './lora-plan.js';

export interface LoraMergeResult extends LoraMergeReport {
  bytes: Uint8Array;
}

export function mergeLora(base: Uint8Array, adapter: LoraAdapter, weight: number, options: LoraMergeOptions): LoraMergeResult {
  const t0 = performance.now();
  checkWeight(weight);
  const structure = readGraphStructure(bufferSource(base));
  // A graph handed to onnxruntime as bytes cannot find external files beside its own.
  const external = structure.initializers.find((t) => t.data.kind === 'external');
  if (external) {
    throw new ModelFileError(
      `The graph keeps weights such as ${quoteName(external.name)} in external data files, which a merged graph held in memory cannot reference; merge it from its file instead (a LoRA patcher's open).`,
    );
  }
  const plan = planLoraMerge(structure, adapter, options);
  let bytes = base;
  if (weight !== 0) {
    bytes = base.slice();
    for (const job of plan.jobs) addInline(bytes, job, weight);
  }
  return { ...plan.report, mergeMs: performance.now() - t0, bytes };
}

/** A `LoadOptions.graphPatches` entry that merges the adapter into its target graph. */
export interface LoraPatcher extends GraphPatch {
  /** The merge on a graph's bytes held in memory (mergeLora), for graphs without external data. */
  apply(bytes: Uint8Array): Uint8Array;
  /** What the merge did and how long it took; throws if the target file never came through. */
  report(): LoraMergeReport;
}

export interface LoraPatcherOptions extends Partial<LoraMergeOptions> {
  /** The graph, relative to the model's folder (e.g. `denoiser.onnx`, `unet/model.onnx`). */
  file: string;
  /** Where merged external weights are written until the session holds them; the system's temporary folder by default. */
  scratchDir?: string;
}

/**
 * A patcher for `file`. Its component defaults to the file's first path segment without
 * extension: `denoiser`, `unet`.
 */
export function loraPatcher(adapter: LoraAdapter, weight: number, options: LoraPatcherOptions): LoraPatcher {
  checkWeight(weight);
  const file = path.posix.normalize(options.file);
  const mergeOptions: LoraMergeOptions = {
    component: options.component ?? file.split('/')[0]!.replace(/\.onnx$/, ''),
    allowPartial: options.allowPartial ?? false,
    ...(options.prefixes ? { prefixes: options.prefixes } : {}),
    ...(options.unprefixed !== undefined ? { unprefixed: options.unprefixed } : {}),
  };
  let last: LoraMergeReport | undefined;
  return {
    file,
    apply(bytes) {
      const { bytes: merged, ...report } = mergeLora(bytes, adapter, weight, mergeOptions);
      last = report;
      return merged;
    },
    async open(graphPath): Promise<PatchedGraph> {
      const t0 = performance.now();
      const bytes = new Uint8Array(await fs.readFile(graphPath));
      const structure = readGraphStructure(bufferSource(bytes));
      const plan = planLoraMerge(structure, adapter, mergeOptions);
      const graphDir = path.dirname(graphPath);
      const patched =
        weight === 0
          ? { bytes, folder: graphDir, dispose: async () => {} }
          : await patchGraphFile({ bytes, structure, jobs: plan.jobs, weight, graphDir, scratchDir: options.scratchDir ?? os.tmpdir() });
      last = { ...plan.report, mergeMs: performance.now() - t0 };
      return { bytes: patched.bytes, externalDataFolder: patched.folder, dispose: patched.dispose };
    },
    report() {
      if (!last) throw new Error(`the LoRA's target ${file} was never loaded, so the LoRA was not applied`);
      return last;
    },
  };
}

function checkWeight(weight: number) {
  if (!Number.isFinite(weight)) throw new RangeError(`LoRA weight ${weight} is not a finite number`);
}

/** W += A·B in place in `bytes`, one row at a time in double precision. */
function addInline(bytes: Uint8Array, job: WeightJob, weight: number) {
  const { data, dataType } = job.weight.tensor;
  if (data.kind !== 'raw' && data.kind !== 'float_data') return;
  const half = dataType === OnnxDataType.FLOAT16;
  const f = factorsOf(job, weight);
  // Copied out and back: raw_data need not be aligned for a typed array over the file.
  const region = bytes.subarray(data.start, data.end);
  const aligned = new Uint8Array(region.length);
  aligned.set(region);
  const values = half ? new Uint16Array(aligned.buffer) : new Float32Array(aligned.buffer);
  const inner = f.a.length / f.rows;
  const row = new Float64Array(f.cols);
  for (let o = 0; o < f.rows; o++) {
    if (!lowRankRow(row, f, o, inner)) continue;
    if (values instanceof Uint16Array) addRowHalf(values, o * f.cols, row);
    else addRow(values, o * f.cols, row);
  }
  region.set(aligned);
}

/** row = Σₖ A[o, k] · B[k, :]; false when A's row is all zeros. Kept small so that V8 optimises it on its own. */
function lowRankRow(row: Float64Array, f: Factors, o: number, inner: number): boolean {
  const cols = row.length;
  let any = false;
  row.fill(0);
  for (let k = 0; k < inner; k++) {
    const c = f.a[o * inner + k]!;
    if (c === 0) continue;
    any = true;
    for (let j = 0, d = k * cols; j < cols; j++, d++) row[j] += c * f.b[d]!;
  }
  return any;
}

function addRow(w: Float32Array, offset: number, row: Float64Array) {
  for (let j = 0; j < row.length; j++) w[offset + j] = w[offset + j]! + row[j]!;
}

function addRowHalf(w: Uint16Array, offset: number, row: Float64Array) {
  for (let j = 0; j < row.length; j++) w[offset + j] = floatToHalfBits(halfBitsToFloat(w[offset + j]!) + row[j]!);
}
