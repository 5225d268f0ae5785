import { type EntityManager, IsNull } from 'typeorm';
import { ModelEntity } from '../../db/entities/model.js';
import { badInput } from '../../errors.js';
import type { KindDefinition, Prepared } from '../../jobs/kind.js';
import { pipelineLoraGraphs } from '../../models/lora-targets.js';
import { INSTALL_REQUIRED, type InstallParams, installParams } from './params.js';
import { isRevision, nameOf, parseSource, SourceError } from './source.js';
import { sweepInstalls } from './work-dir.js';

const QUEUE = 'install';
/** The role the installed model has among the job's models, once it completed. */
export const INSTALLED = 'installed';
/**
 * Installs run as long as the transfer takes (an fp16 FLUX.1 is some 33 GB), and a stalled request
 * fails on its own; pg-boss takes no expiry past 24 hours, the lifecycle's backstop included.
 */
const LIMIT_S = 23 * 3600;

/** A model (base or LoRA) downloaded from a hub repository or a URL, checked, and registered. */
export const installKind: KindDefinition<InstallParams> = {
  name: 'install',
  params: installParams,
  required: INSTALL_REQUIRED,
  steps: { DOWNLOADING: [0.01, 0.9], VERIFYING: 0.92, REGISTERING: 0.95 },
  // Any worker can download: nothing here needs an accelerator.
  queues: [QUEUE],
  servedQueues: () => [QUEUE],
  prepare,
  // Unknown until the files are listed; the DOWNLOADING events carry the time left.
  estimateSeconds: async () => 0,
  timeouts: (d) => ({ softTimeoutSeconds: Math.max(d.softTimeoutSeconds, LIMIT_S), hardTimeoutSeconds: Math.max(d.hardTimeoutSeconds, LIMIT_S) }),
  task: () => import('./task.js'),
  graphql: () => import('./graphql.js'),
  housekeeping: sweepInstalls,
};

/**
 * Checks an install's input without reaching the network (its source's form, the kind and base
 * model, the revision) and fills in what was left out. The base model of a LoRA is share-locked
 * until the transaction ends and recorded as the job's `base`, so it cannot be deleted while the
 * install waits or runs.
 */
async function prepare(em: EntityManager, input: Partial<InstallParams>, field: string): Promise<Prepared<InstallParams>> {
  let source;
  try {
    source = parseSource(input.source!);
  } catch (err) {
    if (err instanceof SourceError) throw badInput(`${field}.source`, err.message);
    throw err;
  }
  const revision = input.revision ?? null;
  if (revision !== null) {
    if (source.type !== 'hub') throw badInput(`${field}.revision`, 'is for hub repositories (hf:owner/repo), not URLs');
    if (!isRevision(revision)) throw badInput(`${field}.revision`, 'is not a branch, tag or commit');
    if (source.revision && source.revision !== revision) throw badInput(`${field}.revision`, `says ${revision}, but the source says @${source.revision}`);
  }
  const kind = input.kind ?? (input.baseModelId ? 'LORA' : 'BASE');
  if (kind === 'BASE' && input.baseModelId) throw badInput(`${field}.baseModelId`, 'is only for LoRA adapters');
  if (kind === 'LORA' && !input.baseModelId) throw badInput(`${field}.baseModelId`, 'is needed: a LoRA adapter applies to a base model');
  if (kind === 'BASE' && source.type === 'url' && /\.safetensors$/i.test(source.url.pathname)) {
    throw badInput(`${field}.baseModelId`, 'is needed: one .safetensors file is installed as a LoRA adapter of a base model');
  }

  if (input.baseModelId) {
    const base = await em.findOne(ModelEntity, { where: { id: input.baseModelId, deletedAt: IsNull() }, lock: { mode: 'pessimistic_read' } });
    if (!base || base.kind !== 'BASE') throw badInput(`${field}.baseModelId`, `names no base model (${input.baseModelId})`);
    if (!pipelineLoraGraphs[base.pipeline]) throw badInput(`${field}.baseModelId`, `names a ${base.pipeline} model, which takes no LoRA adapters`);
  }
  const params: InstallParams = {
    source: input.source!,
    name: input.name ?? nameOf(source),
    kind,
    baseModelId: input.baseModelId ?? null,
    triggerWord: input.triggerWord ?? null,
    revision,
    files: input.files?.length ? input.files : null,
  };
  return { params, models: input.baseModelId ? [{ role: 'base', modelId: input.baseModelId }] : [], queue: QUEUE };
}
