import path from 'node:path';
import { floatToHalfBits, halfBitsToFloat } from '../pipelines/onnx/float16.js';
import type { GraphPatch } from '../pipelines/pipeline.js';
import type { LoraAdapter, LoraModule } from './lora-adapter.js';
import { ModelFileError, quoteName } from './model-file-error.js';
import { inspectOnnx, OnnxDataType, type OnnxTensor } from './onnx-model.js';

/**
 * Merges a LoRA into a base ONNX graph's bytes: W += weight · (alpha / rank) · up · down for
 * every module whose weight the graph holds. The values are rewritten in place in a copy of the
 * bytes (raw_data keeps its length, so nothing is re-encoded), and the base is never modified:
 * the graph for (base, LoRA, weight) is always built from the base, so LoRAs never stack.
 *
 * A module `down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q` matches the initializer
 * `<any prefix>down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight`; kohya's
 * underscored paths are ambiguous, so they are compared with the graph's names converted to
 * underscores, never guessed back into dots. The weight must be [out, in] (PyTorch's Linear
 * layout) or [out, in, kh, kw] (Conv), float32 or float16, and the graph must keep all its
 * weights inside the .onnx file.
 *
 * Which Stable Diffusion exports qualify: a diffusers UNet exported by `torch.onnx.export`
 * without constant folding keeps PyTorch's names and layouts (`…attn1.to_q.weight` [out, in],
 * transposed in the graph), as Kiln's sd-tiny fixture does. Optimum's exports fold each Linear
 * weight's Transpose into an anonymous `onnx::MatMul_1234` [in, out], which no LoRA can name:
 * those are refused. Kohya LoRAs for SDXL use the original (LDM) module names
 * (`input_blocks_4_1_…`), not diffusers', and do not match diffusers exports either.
 */

export interface LoraMergeOptions {
  /** The model part this graph is ('unet', 'denoiser', …): modules of other parts are skipped. */
  component: string;
  /**
   * Merge what matches even when some modules for this component match no weight. Off by
   * default: a LoRA applied in part changes the image in ways nobody trained, silently.
   */
  allowPartial?: boolean;
}

export interface LoraMergeReport {
  matched: { module: string; initializer: string; shape: number[] }[];
  /** Modules for this component (or for none) that no weight of the graph matched (only with allowPartial). */
  unmatched: string[];
  /** Modules for other components, e.g. a text encoder's when merging into a UNet. */
  skipped: string[];
  mergeMs: number;
}

export interface LoraMergeResult extends LoraMergeReport {
  bytes: Uint8Array;
}

export function mergeLora(base: Uint8Array, adapter: LoraAdapter, weight: number, options: LoraMergeOptions): LoraMergeResult {
  const t0 = performance.now();
  if (!Number.isFinite(weight)) throw new RangeError(`LoRA weight ${weight} is not a finite number`);
  const info = inspectOnnx(base);
  // A merged graph reaches onnxruntime as bytes, and onnxruntime then resolves external-data
  // paths against the process's working directory, not the model's folder.
  const external = info.externalTensors[0];
  if (external) {
    throw new ModelFileError(
      `The graph keeps weights such as ${quoteName(external.name)} in external data files, which a merged graph cannot reference safely; LoRA merging needs a model whose weights are all inside its .onnx file.`,
    );
  }
  const index = indexWeights(info.initializers);
  const report: LoraMergeReport = { matched: [], unmatched: [], skipped: [], mergeMs: 0 };
  const plan: [LoraModule, OnnxTensor][] = [];
  for (const m of adapter.modules) {
    const label = m.component ? `${m.component}:${m.path}` : m.path;
    if (m.component !== null && m.component !== options.component) {
      report.skipped.push(label);
      continue;
    }
    const candidates = index.get(`${m.naming}:${m.path}`) ?? [];
    if (candidates.length > 1) {
      throw new ModelFileError(`LoRA module ${quoteName(m.path)} matches several weights of the graph (${candidates.slice(0, 3).map((c) => quoteName(c.name)).join(', ')}), so Kiln cannot tell which to patch.`);
    }
    const target = candidates[0];
    if (!target) {
      report.unmatched.push(label);
      continue;
    }
    checkFits(m, target);
    plan.push([m, target]);
    report.matched.push({ module: label, initializer: target.name, shape: target.dims });
  }
  if (!plan.length) throw nothingMatched(adapter, options.component, report, info.initializers);
  if (!options.allowPartial && report.unmatched.length) {
    throw new ModelFileError(
      `${report.unmatched.length} of the LoRA's ${report.unmatched.length + plan.length} ${options.component} modules match no weight of the graph, for example ${quoteName(report.unmatched[0]!)}, so it would apply only in part.${constantFoldingHint(info.initializers)}`,
    );
  }
  let bytes = base;
  if (weight !== 0) {
    bytes = base.slice();
    for (const [m, target] of plan) addDelta(bytes, target, m, weight);
  }
  report.mergeMs = performance.now() - t0;
  return { ...report, bytes };
}

/** A `LoadOptions.graphPatch` that merges the adapter into its target graph. */
export interface LoraPatcher extends GraphPatch {
  /** What the merge did and how long it took; throws if the target file never came through. */
  report(): LoraMergeReport;
}

/**
 * A patcher for `file` (e.g. `denoiser.onnx`, `unet/model.onnx`). Its component defaults to the
 * file's first path segment without extension: `denoiser`, `unet`.
 */
export function loraPatcher(adapter: LoraAdapter, weight: number, options: { file: string } & Partial<LoraMergeOptions>): LoraPatcher {
  const file = path.posix.normalize(options.file);
  const component = options.component ?? file.split('/')[0]!.replace(/\.onnx$/, '');
  let last: LoraMergeReport | undefined;
  return {
    file,
    apply(bytes) {
      const { bytes: merged, ...report } = mergeLora(bytes, adapter, weight, { component, allowPartial: options.allowPartial ?? false });
      last = report;
      return merged;
    },
    report() {
      if (!last) throw new Error(`the LoRA's target ${file} was never loaded, so the LoRA was not applied`);
      return last;
    },
  };
}

/** Each `.weight` initializer under every name a module could give it: its dotted suffixes, and those with underscores. */
function indexWeights(initializers: OnnxTensor[]): Map<string, OnnxTensor[]> {
  const index = new Map<string, OnnxTensor[]>();
  const add = (key: string, t: OnnxTensor) => {
    const list = index.get(key) ?? [];
    if (!list.includes(t)) list.push(t);
    index.set(key, list);
  };
  for (const t of initializers) {
    if (!t.name.endsWith('.weight')) continue;
    const segments = t.name.slice(0, -'.weight'.length).split('.');
    for (let i = 0; i < segments.length; i++) {
      const suffix = segments.slice(i);
      add(`dotted:${suffix.join('.')}`, t);
      add(`underscored:${suffix.join('_')}`, t);
    }
  }
  return index;
}

function checkFits(m: LoraModule, t: OnnxTensor) {
  const [out, ...rest] = t.dims;
  const inner = rest.reduce((a, b) => a * b, 1);
  const downInner = m.down.shape.slice(1).reduce((a, b) => a * b, 1);
  const fits =
    t.dims.length >= 2 &&
    m.up.shape[0] === out &&
    downInner === inner &&
    // A conv LoRA's down kernel must be the base kernel; a plain [rank, in] fits a 1×1 conv.
    (m.down.shape.length === 2 || m.down.shape.slice(1).join() === rest.join());
  if (!fits) {
    throw new ModelFileError(
      `LoRA module ${quoteName(m.path)} (down [${m.down.shape.join(', ')}], up [${m.up.shape.join(', ')}]) does not fit weight ${quoteName(t.name)} of shape [${t.dims.join(', ')}]; the LoRA was made for another model.`,
    );
  }
  const { data } = t;
  const inline = data.kind === 'raw' || data.kind === 'float_data';
  const supported = inline && (t.dataType === OnnxDataType.FLOAT || (t.dataType === OnnxDataType.FLOAT16 && data.kind === 'raw'));
  if (!supported) throw new ModelFileError(`Weight ${quoteName(t.name)} is not stored as float32 or float16 raw data, so a LoRA cannot be merged into it.`);
  const size = out! * inner * (t.dataType === OnnxDataType.FLOAT16 ? 2 : 4);
  if (data.end - data.start !== size) throw new ModelFileError(`Weight ${quoteName(t.name)} holds ${data.end - data.start} bytes, not the ${size} its shape needs.`);
}

/** W[o, j] += s · Σₖ up[o, k] · down[k, j], one row at a time in double precision. */
function addDelta(bytes: Uint8Array, t: OnnxTensor, m: LoraModule, weight: number) {
  if (t.data.kind !== 'raw' && t.data.kind !== 'float_data') return;
  const half = t.dataType === OnnxDataType.FLOAT16;
  const out = t.dims[0]!;
  const inner = (t.data.end - t.data.start) / (half ? 2 : 4) / out;
  const s = (weight * m.alpha) / m.rank;
  // Widened once: the inner loop then runs about twice as fast as over float32 values.
  const down = Float64Array.from(m.down.data);
  // Copied out and back: raw_data need not be aligned for a typed array over the file.
  const region = bytes.subarray(t.data.start, t.data.end);
  const aligned = new Uint8Array(region.length);
  aligned.set(region);
  const halves = new Uint16Array(aligned.buffer, 0, half ? out * inner : 0);
  const floats = new Float32Array(aligned.buffer, 0, half ? 0 : out * inner);
  const row = new Float64Array(inner);
  for (let o = 0; o < out; o++) {
    lowRankRow(row, m.up.data, down, o, m.rank, s);
    if (half) addRowHalf(halves, o * inner, row);
    else addRow(floats, o * inner, row);
  }
  region.set(aligned);
}

/** row = s · Σₖ up[o, k] · down[k, :]; kept small so that V8 optimises it on its own. */
function lowRankRow(row: Float64Array, up: Float32Array, down: Float64Array, o: number, rank: number, s: number) {
  const inner = row.length;
  row.fill(0);
  for (let k = 0; k < rank; k++) {
    const c = s * up[o * rank + k]!;
    if (c === 0) continue;
    for (let j = 0, d = k * inner; j < inner; j++, d++) row[j] += c * down[d]!;
  }
}

function addRow(w: Float32Array, offset: number, row: Float64Array) {
  for (let j = 0; j < row.length; j++) w[offset + j] = w[offset + j]! + row[j]!;
}

function addRowHalf(w: Uint16Array, offset: number, row: Float64Array) {
  for (let j = 0; j < row.length; j++) w[offset + j] = floatToHalfBits(halfBitsToFloat(w[offset + j]!) + row[j]!);
}

function nothingMatched(adapter: LoraAdapter, component: string, report: LoraMergeReport, initializers: OnnxTensor[]): ModelFileError {
  if (!report.unmatched.length) {
    const parts = [...new Set(adapter.modules.map((m) => m.component))].join(', ');
    return new ModelFileError(`The LoRA has no modules for the ${component}; its modules are for: ${parts}.`);
  }
  const examples = adapter.modules
    .filter((m) => m.component === null || m.component === component)
    .slice(0, 2)
    .map((m) => quoteName(`${m.path}.weight`))
    .join(' and ');
  return new ModelFileError(
    `None of the LoRA's ${report.unmatched.length} ${component} modules matches a weight of this graph (looked for weights named like ${examples}, under any prefix).${constantFoldingHint(initializers)}`,
  );
}

/** Exports with constant folding replace transposed Linear weights with anonymous ones. */
function constantFoldingHint(initializers: OnnxTensor[]): string {
  return initializers.some((t) => t.name.startsWith('onnx::MatMul_'))
    ? ' This export renamed its MatMul weights (onnx::MatMul_…), as constant folding does, so LoRAs cannot be matched to them; export the model without constant folding to keep PyTorch weight names.'
    : '';
}
