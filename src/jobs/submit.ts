import crypto from 'node:crypto';
import type { PgBoss } from 'pg-boss';
import { type DataSource, type EntityManager, In } from 'typeorm';
import { type Generation, GenerationEntity } from '../db/entities/generation.js';
import { type Model, ModelEntity } from '../db/entities/model.js';
import { badInput } from '../errors.js';
import { Channel } from '../events/channels.js';
import { appendEvent } from '../events/event-log.js';
import { estimateSeconds } from './estimate.js';
import type { GenerationParams, ValidGenerateInput } from './generate-input.js';
import { resolveParams } from './generate-input.js';
import { claimKey, recordKey, requestHash } from './idempotency.js';
import { GENERATE_QUEUE, type GenerateJobData, inTransaction } from './queue.js';

export interface SubmitDeps {
  ds: DataSource;
  boss: PgBoss;
}

export interface Submission {
  /** Each input with its path in the operation (`input`, `inputs.3`), for error fields. */
  inputs: { input: ValidGenerateInput; field: string }[];
  idempotency?: { scope: string; key: string; operation: string; ttlHours: number };
}

/** The base model an input names, or the default one. `field` is the input's path. */
export async function resolveBaseModel(em: EntityManager, modelId: string | null | undefined, field: string): Promise<Model> {
  const model = modelId
    ? await em.findOneBy(ModelEntity, { id: modelId })
    : await em.findOneBy(ModelEntity, { isDefault: true });
  if (!model) {
    throw modelId
      ? badInput(`${field}.modelId`, `names no model (${modelId})`)
      : badInput(`${field}.modelId`, 'is needed: there is no default model');
  }
  if (model.kind !== 'BASE') throw badInput(`${field}.modelId`, `names a LoRA adapter, not a base model (${modelId})`);
  return model;
}

/**
 * Writes each generation, its QUEUED event and its job in one transaction: afterwards either all
 * of them exist or none do. The job's id is the generation's id. With an idempotency key, a
 * repeat of an earlier request returns what that request made instead.
 */
export async function submitGenerations(deps: SubmitDeps, s: Submission): Promise<{ generations: Generation[]; estimatedTotalSeconds: number }> {
  return deps.ds.transaction(async (em) => {
    const params: GenerationParams[] = [];
    for (const { input, field } of s.inputs) params.push(resolveParams(input, await resolveBaseModel(em, input.modelId, field)));

    const key = s.idempotency;
    const earlier = key
      ? await claimKey(em, key.scope, key.key, requestHash(key.operation, s.inputs.map((i) => i.input)), key.ttlHours)
      : undefined;
    const ids = earlier ?? params.map(() => crypto.randomUUID());
    if (!earlier) {
      for (const [i, p] of params.entries()) await enqueue(em, deps.boss, ids[i]!, p);
      if (key) await recordKey(em, key.scope, key.key, ids);
      await em.query(`SELECT pg_notify('${Channel.jobs}', '')`);
    }
    const rows = await em.findBy(GenerationEntity, { id: In(ids) });
    const generations = ids.map((id) => rows.find((r) => r.id === id)).filter((g): g is Generation => g !== undefined);
    return { generations, estimatedTotalSeconds: await estimateSeconds(em, params) };
  });
}

async function enqueue(em: EntityManager, boss: PgBoss, id: string, p: GenerationParams) {
  await em.insert(GenerationEntity, {
    id,
    status: 'PENDING',
    currentStep: 'QUEUED',
    progress: 0,
    prompt: p.prompt,
    negativePrompt: p.negativePrompt,
    modelId: p.modelId,
    loraId: p.loraId,
    loraWeight: p.loraWeight,
    numImages: p.numImages,
    steps: p.steps,
    guidanceScale: p.guidanceScale,
    width: p.width,
    height: p.height,
    seed: p.seed,
    priority: p.priority,
    previews: p.previews,
    deadlineAt: p.deadlineSeconds ? () => `now() + interval '${p.deadlineSeconds} seconds'` : null,
  });
  await appendEvent(em, id, { step: 'QUEUED', status: 'PENDING', attempt: 0, progress: 0, message: 'Queued' });
  const data: GenerateJobData = { generationId: id };
  await boss.send(GENERATE_QUEUE, data, { id, priority: p.priority, db: inTransaction(em) });
}
