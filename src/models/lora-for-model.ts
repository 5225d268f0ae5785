import fs from 'node:fs/promises';
import path from 'node:path';
import type { LoraAdapter, LoraModule } from './lora-adapter.js';
import { FAMILY_NAMES, loraBaseFamily } from './lora-family.js';
import { type LoraMergeReport, loraPatcher, type LoraPatcher } from './lora-merge.js';
import { labelOf, LoraMatchError, planLoraMerge } from './lora-plan.js';
import type { LoraGraphTarget } from './lora-targets.js';
import { ModelFileError, quoteName } from './model-file-error.js';
import { readGraphStructureFile } from './onnx-graph-structure.js';

/**
 * An adapter laid onto a whole model folder: its modules shared out among the graphs that take
 * them (lora-targets.ts), a patch per graph for loading, and the same matching run at upload
 * time against the base model's graphs, so that an adapter made for another model is refused
 * there, with the reason, and not at every generation.
 */

interface Assignment {
  target: LoraGraphTarget;
  /** The graph file the folder has, or null. */
  file: string | null;
  modules: LoraModule[];
}

/** Each target with the file the folder has for it and the modules it takes; the modules nothing takes. */
async function assign(adapter: LoraAdapter, targets: readonly LoraGraphTarget[], dir: string): Promise<{ graphs: Assignment[]; unassigned: LoraModule[] }> {
  const graphs: Assignment[] = [];
  for (const target of targets) {
    let file: string | null = null;
    for (const f of target.files) {
      if ((await fs.stat(path.join(dir, f)).catch(() => null))?.isFile()) {
        file = f;
        break;
      }
    }
    graphs.push({ target, file, modules: [] });
  }
  const unassigned: LoraModule[] = [];
  for (const m of adapter.modules) {
    const graph = graphs.find(({ target }) => (m.component === null ? target.unprefixed : target.prefixes.includes(m.component)));
    if (graph?.file) graph.modules.push(m);
    else unassigned.push(m);
  }
  return { graphs, unassigned };
}

export interface LoraSetReport {
  graphs: ({ file: string } & LoraMergeReport)[];
  /** Modules no graph of the model took: for parts it does not have (a text encoder a folder ships without, say). */
  skipped: string[];
  mergeMs: number;
}

export interface LoraPatchSet {
  patches: LoraPatcher[];
  /** What each graph's merge did; throws if one of them was never loaded. */
  report(): LoraSetReport;
}

/** Patches for every graph of the model in `dir` that takes some of the adapter's modules. */
export async function loraPatchSet(adapter: LoraAdapter, weight: number, targets: readonly LoraGraphTarget[], dir: string, options: { scratchDir?: string } = {}): Promise<LoraPatchSet> {
  const { graphs, unassigned } = await assign(adapter, targets, dir);
  const used = graphs.filter((g) => g.modules.length);
  if (!used.length) throw noGraphFor(adapter, targets);
  const patches = used.map(({ target, file }) =>
    loraPatcher(adapter, weight, { file: file!, component: target.component, prefixes: target.prefixes, unprefixed: target.unprefixed, ...options }),
  );
  return {
    patches,
    report() {
      const reports = patches.map((p) => ({ file: p.file, ...p.report() }));
      return { graphs: reports, skipped: unassigned.map(labelOf), mergeMs: reports.reduce((n, r) => n + r.mergeMs, 0) };
    },
  };
}

export interface LoraFit {
  modules: number;
  /** Modules that will patch a weight. */
  matched: number;
  graphs: { file: string; component: string; matched: number }[];
  /** Modules no graph of the model takes (kept, not applied). */
  skipped: string[];
}

/**
 * Checks, from the graphs' structure alone, that the adapter applies to the model in `dir` as
 * it will at generation time. Throws a ModelFileError saying why not: no module matches (with
 * their count and example keys), some do not, or one does not fit its weight.
 */
export async function checkLoraFits(adapter: LoraAdapter, targets: readonly LoraGraphTarget[], dir: string): Promise<LoraFit> {
  const { graphs, unassigned } = await assign(adapter, targets, dir);
  const family = loraBaseFamily(adapter.metadata);
  const trained = family ? ` Its metadata says it was trained for ${FAMILY_NAMES[family.family]} (${family.source} ${quoteName(family.value)}).` : '';
  const fit: LoraFit = { modules: adapter.modules.length, matched: 0, graphs: [], skipped: unassigned.map(labelOf) };
  const unmatched: string[] = [];
  for (const { target, file, modules } of graphs) {
    if (!file || !modules.length) continue;
    try {
      const { report } = planLoraMerge(readGraphStructureFile(path.join(dir, file)), adapter, {
        component: target.component,
        prefixes: target.prefixes,
        unprefixed: target.unprefixed,
        allowPartial: true,
      });
      const matched = new Set(report.matched.map((m) => m.module)).size;
      fit.graphs.push({ file, component: target.component, matched });
      fit.matched += matched;
      unmatched.push(...report.unmatched);
      const partial = report.partial[0];
      if (partial) {
        throw new ModelFileError(`The LoRA's ${target.component} module ${quoteName(partial.module)} matches only in part: the model has no ${quoteName(partial.missing[0]!)}.`);
      }
    } catch (err) {
      if (!(err instanceof LoraMatchError)) throw new ModelFileError(`${(err as Error).message}${trained}`);
      unmatched.push(...modules.map(labelOf));
    }
  }
  const keys = (labels: string[]) =>
    adapter.modules
      .filter((m) => labels.includes(labelOf(m)))
      .slice(0, 3)
      .map((m) => quoteName(m.key))
      .join(', ');
  if (!fit.matched) {
    const nothing = unmatched.length ? unmatched : fit.skipped;
    throw new ModelFileError(`None of the LoRA's ${adapter.modules.length} modules matches a weight of this model; ${nothing.length} matched nothing, for example ${keys(nothing)}.${trained}`);
  }
  if (unmatched.length) {
    throw new ModelFileError(`${unmatched.length} of the LoRA's ${adapter.modules.length} modules match no weight of this model, for example ${keys(unmatched)}, so it would apply only in part.${trained}`);
  }
  return fit;
}

function noGraphFor(adapter: LoraAdapter, targets: readonly LoraGraphTarget[]): ModelFileError {
  const parts = [...new Set(adapter.modules.map((m) => m.component ?? '(none)'))].join(', ');
  return new ModelFileError(`The LoRA has no modules for this model's ${targets.map((t) => t.component).join(' or ')}; its modules are for: ${parts}.`);
}
