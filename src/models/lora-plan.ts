import type { LoraAdapter, LoraModule } from './lora-adapter.js';
import { type GraphWeight, indexGraphWeights, type WeightIndex, type WeightSlot } from './lora-graph-weights.js';
import { moduleAlternatives, type TargetPart } from './lora-module-names.js';
import { ModelFileError, quoteName } from './model-file-error.js';
import type { GraphStructure } from './onnx-graph-structure.js';
import { OnnxDataType } from './onnx-model.js';

/**
 * Which weight of a graph each of an adapter's modules patches, and which rows of it: the part
 * of a LoRA merge that needs only the graph's structure, so that uploads can be checked against
 * a base model without reading its weights. Refusals are ModelFileErrors saying why.
 */

export interface LoraMergeOptions {
  /** The model part this graph is ('unet', 'transformer', 'text_encoder', 'denoiser', …), in messages. */
  component: string;
  /** The adapter components (key prefixes) this graph takes; `[component]` by default. */
  prefixes?: string[];
  /** Whether it takes modules whose keys name no component (bare PEFT saves, XLabs); true by default. */
  unprefixed?: boolean;
  /**
   * Merge what matches even when some modules for this component match no weight. Off by
   * default: a LoRA applied in part changes the image in ways nobody trained, silently.
   */
  allowPartial?: boolean;
}

export interface LoraMergeReport {
  /** One entry per weight a module patches; `part` names the graph's module when it is not the adapter's own (a split or renamed module). */
  matched: { module: string; initializer: string; shape: number[]; part?: string }[];
  /** Modules for this component (or for none) that no weight of the graph matched (only with allowPartial). */
  unmatched: string[];
  /** Modules that matched in part: a fused module (qkv, linear1) whose parts the graph lacks some of (only with allowPartial). */
  partial: { module: string; missing: string[] }[];
  /** Modules for other components, e.g. a text encoder's when merging into a UNet. */
  skipped: string[];
  mergeMs: number;
}

/** Rows [upStart, upStart + rows) of a module's up matrix, added to rows from `row` of a weight's module. */
export interface Piece {
  module: LoraModule;
  upStart: number;
  rows: number;
  row: number;
}

/** Everything one weight gets. */
export interface WeightJob {
  weight: GraphWeight;
  pieces: Piece[];
}

export interface LoraPlan {
  jobs: WeightJob[];
  report: Omit<LoraMergeReport, 'mergeMs'>;
}

/** The low-rank update of one weight as two factors, A [rows, r] and B [r, cols] in its stored layout. */
export interface Factors {
  a: Float64Array;
  b: Float64Array;
  rows: number;
  cols: number;
}

/**
 * Every piece of a weight's update in one product: U [out, R] holds each piece's scaled up rows
 * at its rows (zeros elsewhere) and D [R, in] the pieces' down matrices, R their ranks summed.
 * A weight stored [in, out] gets Dᵀ and Uᵀ instead.
 */
export function factorsOf(job: WeightJob, weight: number): Factors {
  const { rows, cols, layout } = job.weight;
  const inner = job.pieces.reduce((n, p) => n + p.module.rank, 0);
  const u = new Float64Array(rows * inner);
  const d = new Float64Array(inner * cols);
  let c = 0;
  for (const p of job.pieces) {
    const { rank, alpha, up, down } = p.module;
    const s = (weight * alpha) / rank;
    for (let i = 0; i < p.rows; i++) {
      for (let k = 0; k < rank; k++) u[(p.row + i) * inner + c + k] = s * up.data[(p.upStart + i) * rank + k]!;
    }
    d.set(down.data, c * cols);
    c += rank;
  }
  if (layout === 'out-in') return { a: u, b: d, rows, cols };
  return { a: transpose(d, inner, cols), b: transpose(u, rows, inner), rows: cols, cols: rows };
}

function transpose(m: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(m.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j]!;
  return t;
}

export const labelOf = (m: LoraModule) => (m.component ? `${m.component}:${m.path}` : m.path);

export function planLoraMerge(structure: GraphStructure, adapter: LoraAdapter, options: LoraMergeOptions): LoraPlan {
  const index = indexGraphWeights(structure);
  const prefixes = options.prefixes ?? [options.component];
  const unprefixed = options.unprefixed ?? true;
  const report: LoraPlan['report'] = { matched: [], unmatched: [], partial: [], skipped: [] };
  const jobs = new Map<GraphWeight['tensor'], WeightJob>();
  const listed = new Set<string>();
  let matchedModules = 0;
  for (const m of adapter.modules) {
    const label = labelOf(m);
    if (m.component === null ? !unprefixed : !prefixes.includes(m.component)) {
      report.skipped.push(label);
      continue;
    }
    const found = resolve(m, index);
    if (!found) {
      report.unmatched.push(label);
      continue;
    }
    matchedModules++;
    if (found.missing.length) report.partial.push({ module: label, missing: found.missing });
    for (const { slot, piece, part } of found.pieces) {
      const job = jobs.get(slot.weight.tensor) ?? { weight: slot.weight, pieces: [] };
      job.pieces.push(piece);
      jobs.set(slot.weight.tensor, job);
      const entry = `${label}\0${slot.weight.tensor.name}\0${part}`;
      if (listed.has(entry)) continue;
      listed.add(entry);
      report.matched.push({ module: label, initializer: slot.weight.tensor.name, shape: slot.weight.tensor.dims, ...(part ? { part } : {}) });
    }
  }
  if (!matchedModules) throw nothingMatched(adapter, options.component, report, index);
  if (!options.allowPartial && report.unmatched.length) {
    throw new ModelFileError(
      `${report.unmatched.length} of the LoRA's ${report.unmatched.length + matchedModules} ${options.component} modules match no weight of the graph, for example ${quoteName(report.unmatched[0]!)}, so it would apply only in part.${constantFoldingHint(index)}`,
    );
  }
  if (!options.allowPartial && report.partial.length) {
    const [first] = report.partial;
    throw new ModelFileError(
      `${report.partial.length} of the LoRA's ${options.component} modules match only in part, for example ${quoteName(first!.module)}, whose part ${quoteName(first!.missing[0]!)} the graph does not have, so it would apply only in part.`,
    );
  }
  return { jobs: [...jobs.values()], report };
}

interface Found {
  pieces: { slot: WeightSlot; piece: Piece; part: string | null }[];
  missing: string[];
}

/** The first way of naming `m` under which the graph has at least one of its parts. */
function resolve(m: LoraModule, index: WeightIndex): Found | null {
  const alternatives = moduleAlternatives(m, index.layersPerBlock);
  for (const [i, parts] of alternatives.entries()) {
    const found: Found = { pieces: [], missing: [] };
    for (const part of parts) {
      const slots = bestSlots(m, part, index);
      if (!slots) {
        found.missing.push(part.key.slice(part.key.indexOf(':') + 1));
        continue;
      }
      const literal = i === 0 && parts.length === 1;
      for (const slot of slots) found.pieces.push(...piecesFor(m, part, slot, literal));
    }
    if (found.pieces.length) return found;
  }
  return null;
}

/** The weight(s) a part names, preferring the fewest leading segments left over (the exporter's prefix). */
function bestSlots(m: LoraModule, part: TargetPart, index: WeightIndex): WeightSlot[] | null {
  const all = index.slots.get(part.key);
  if (!all?.length) return null;
  const fewest = Math.min(...all.map((s) => s.extra));
  const slots = all.filter((s) => s.extra === fewest);
  const weights = [...new Set(slots.map((s) => s.weight.tensor))];
  if (weights.length > 1) {
    throw new ModelFileError(`LoRA module ${quoteName(m.path)} matches several weights of the graph (${weights.slice(0, 3).map((w) => quoteName(w.name)).join(', ')}), so Kiln cannot tell which to patch.`);
  }
  const moduleRows = Math.max(...slots.map((s) => s.at + s.rows));
  const [weight] = slots.map((s) => s.weight);
  checkFits(m, part, weight!, moduleRows);
  return slots;
}

/** The rows of `slot` that `part` covers. */
function piecesFor(m: LoraModule, part: TargetPart, slot: WeightSlot, literal: boolean): Found['pieces'] {
  const from = Math.max(part.at, slot.at);
  const to = Math.min(part.at + part.rows, slot.at + slot.rows);
  if (from >= to) return [];
  const piece: Piece = { module: m, upStart: part.upStart + (from - part.at), rows: to - from, row: slot.start + (from - slot.at) };
  return [{ slot, piece, part: literal ? null : part.key.slice(part.key.indexOf(':') + 1) }];
}

function checkFits(m: LoraModule, part: TargetPart, w: GraphWeight, moduleRows: number) {
  const downInner = m.down.data.length / m.rank;
  const rowsFit = moduleRows === part.of && part.at + part.rows <= part.of;
  // A conv LoRA's down kernel must be the base kernel; a plain [rank, in] fits a 1×1 conv.
  const kernelFits = m.down.shape.length === 2 ? w.kernel.every((k) => k === 1) : m.down.shape.slice(2).join() === w.kernel.join() || (w.kernel.length === 0 && m.down.shape.slice(2).every((k) => k === 1));
  if (!rowsFit || downInner !== w.cols || !kernelFits) {
    const layout = w.layout === 'in-out' ? ' ([in, out], as MatMul takes it)' : '';
    throw new ModelFileError(
      `LoRA module ${quoteName(m.path)} (down [${m.down.shape.join(', ')}], up [${m.up.shape.join(', ')}]) does not fit weight ${quoteName(w.tensor.name)} of shape [${w.tensor.dims.join(', ')}]${layout}; the LoRA was made for another model.`,
    );
  }
  if (w.sharedWith.length) {
    throw new ModelFileError(`Weight ${quoteName(w.tensor.name)} of module ${quoteName(w.module)} is also module ${quoteName(w.sharedWith[0]!)}'s, so a LoRA cannot patch one without the other.`);
  }
  const { data, dataType } = w.tensor;
  const float = dataType === OnnxDataType.FLOAT || dataType === OnnxDataType.FLOAT16;
  const stored = data.kind === 'raw' || data.kind === 'external' || (data.kind === 'float_data' && dataType === OnnxDataType.FLOAT);
  if (!float || !stored) {
    const what = dataType === OnnxDataType.BFLOAT16 ? 'bfloat16, which onnxruntime-node cannot compute with' : 'not float32 or float16 raw or external data';
    throw new ModelFileError(`Weight ${quoteName(w.tensor.name)} is ${what}, so a LoRA cannot be merged into it.`);
  }
  const size = w.tensor.dims.reduce((a, b) => a * b, 1) * (dataType === OnnxDataType.FLOAT16 ? 2 : 4);
  const bytes = data.kind === 'external' ? (data.length ?? size) : data.end - data.start;
  if (bytes !== size) throw new ModelFileError(`Weight ${quoteName(w.tensor.name)} holds ${bytes} bytes, not the ${size} its shape needs.`);
}

/** A graph none of whose modules the adapter has or matches: the adapter was made for another model (or another part of it). */
export class LoraMatchError extends ModelFileError {
  constructor(
    message: string,
    /** The modules meant for this graph that matched nothing. */
    readonly unmatched: string[],
  ) {
    super(message);
  }
}

function nothingMatched(adapter: LoraAdapter, component: string, report: LoraPlan['report'], index: WeightIndex): ModelFileError {
  if (!report.unmatched.length) {
    const parts = [...new Set(adapter.modules.map((m) => m.component))].join(', ');
    return new LoraMatchError(`The LoRA has no modules for the ${component}; its modules are for: ${parts}.`, []);
  }
  const examples = adapter.modules
    .filter((m) => report.unmatched.includes(labelOf(m)))
    .slice(0, 2)
    .map((m) => quoteName(`${m.path}.weight`))
    .join(' and ');
  return new LoraMatchError(
    `None of the LoRA's ${report.unmatched.length} ${component} modules matches a weight of this graph (looked for weights named like ${examples}, under any prefix).${constantFoldingHint(index)}`,
    report.unmatched,
  );
}

/** Exports with constant folding replace transposed Linear weights with anonymous ones; a graph whose nodes keep no module names leaves them unmatchable. */
function constantFoldingHint(index: WeightIndex): string {
  return index.anonymous.some((t) => t.name.startsWith('onnx::MatMul_'))
    ? ' This export renamed its MatMul weights (onnx::MatMul_…), as constant folding does, and its nodes do not name their modules either, so LoRAs cannot be matched to them; export the model without constant folding to keep PyTorch weight names.'
    : '';
}
