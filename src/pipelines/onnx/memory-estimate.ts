import os from 'node:os';
import path from 'node:path';
import { KilnError } from '../../errors.js';
import { type GraphSummary, summarizeGraph } from './graph-summary.js';

/**
 * The memory a model will take, estimated before any of it is loaded, so that a model too big
 * for the machine is refused with INSUFFICIENT_MEMORY instead of the process being killed by
 * the kernel halfway through reading 24 GB of weights.
 *
 * Weights are the graph files and the external data they reference (the bytes read, not the
 * files' sizes, so files shared between graphs are not counted twice). Sessions also hold
 * activations, onnxruntime's arenas and prepacked copies of some weights: `activationFactor`
 * (1.5 by default, what the session cache budgets) multiplies the weights for that.
 *
 * Where the sessions live depends on the execution provider: on the CPU every graph's weights
 * stay in this process's memory; with a device provider first (cuda, webgpu) onnxruntime reads
 * each graph into host memory, copies it to the device and frees it, so the host needs room
 * for the largest graph at a time (device memory is not visible from here).
 */

export const DEFAULT_ACTIVATION_FACTOR = 1.5;

export interface MemoryEstimate {
  /** Bytes of weights of all the graphs. */
  weightBytes: number;
  /** Bytes of the largest graph's weights. */
  largestGraphBytes: number;
  /** What the process will need on the host: weights (all or the largest, by provider) × activationFactor. */
  requiredBytes: number;
  activationFactor: number;
  /** True when the estimate counts every graph (the CPU provider holds them all). */
  allResident: boolean;
}

export interface EstimateOptions {
  executionProviders: readonly string[];
  activationFactor?: number;
}

/** Weights a graph holds: its file plus every external byte it reads. */
export const graphWeightBytes = (summary: GraphSummary) => summary.fileBytes + [...summary.externalBytes.values()].reduce((a, b) => a + b, 0);

export function estimateMemory(summaries: readonly GraphSummary[], options: EstimateOptions): MemoryEstimate {
  const activationFactor = options.activationFactor ?? DEFAULT_ACTIVATION_FACTOR;
  const sizes = summaries.map(graphWeightBytes);
  const weightBytes = sizes.reduce((a, b) => a + b, 0);
  const largestGraphBytes = Math.max(0, ...sizes);
  const allResident = (options.executionProviders[0] ?? 'cpu') === 'cpu';
  const requiredBytes = Math.ceil((allResident ? weightBytes : largestGraphBytes) * activationFactor);
  return { weightBytes, largestGraphBytes, requiredBytes, activationFactor, allResident };
}

/** Summarizes the graphs at `files` (relative to `dir`) and estimates them together. */
export async function estimateGraphMemory(dir: string, files: readonly string[], options: EstimateOptions): Promise<MemoryEstimate> {
  const summaries = await Promise.all(files.map((f) => summarizeGraph(path.join(dir, f))));
  return estimateMemory(summaries, options);
}

/** Memory this process may still take: what the system has available, within any cgroup limit. */
export function availableMemory(): number {
  const available = (process as { availableMemory?: () => number }).availableMemory;
  return typeof available === 'function' ? available.call(process) : os.freemem();
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 2 : 1)} GiB`;

/** Refuses with INSUFFICIENT_MEMORY when `estimate` does not fit in `available` bytes. `what` names the model. */
export function ensureMemory(what: string, estimate: MemoryEstimate, available = availableMemory()): void {
  if (estimate.requiredBytes <= available) return;
  const weights = estimate.allResident ? `${gib(estimate.weightBytes)} of weights` : `its largest graph's ${gib(estimate.largestGraphBytes)} of weights, staged on the host`;
  throw new KilnError(
    'INSUFFICIENT_MEMORY',
    `${what} needs about ${gib(estimate.requiredBytes)} of memory to load (${weights} × ${estimate.activationFactor} for activations), and ${gib(available)} is available`,
    { requiredBytes: estimate.requiredBytes, availableBytes: available, weightBytes: estimate.weightBytes },
  );
}
