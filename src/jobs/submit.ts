import crypto from 'node:crypto';
import type { PgBoss } from 'pg-boss';
import { type DataSource, type EntityManager, In, IsNull } from 'typeorm';
import { type Generation, GenerationEntity } from '../db/entities/generation.js';
import { type Model, ModelEntity } from '../db/entities/model.js';
import { entityFromRow } from '../db/sql.js';
import { badInput } from '../errors.js';
import { Channel } from '../events/channels.js';
import { appendEvent } from '../events/event-log.js';
import { estimateSeconds } from './estimate.js';
import type { GenerationParams, ValidGenerateInput } from './generate-input.js';
import { resolveParams } from './generate-input.js';
import { claimKey, recordKey, requestHash } from './idempotency.js';
import { GENERATE_QUEUE, type GenerateJobData, inTransaction, type JobPolicy } from './queue.js';

export interface SubmitDeps {
  ds: DataSource;
  boss: PgBoss;
  jobPolicy: JobPolicy;
}

export interface Submission {
  /** Each input with its path in the operation (`input`, `inputs.3`), for error fields. */
  inputs: { input: ValidGenerateInput; field: string }[];
  idempotency?: { scope: string; key: string; operation: string; ttlHours: number };
}

/**
 * The base model an input names (or the default one) and its LoRA, if any, both share-locked
 * until the transaction ends, so neither can be deleted under a generation being queued.
 */
export async function resolveModels(em: EntityManager, input: ValidGenerateInput, field: string): Promise<{ model: Model; lora: Model | null }> {
  const lock = { mode: 'pessimistic_read' } as const;
  const model = await em.findOne(ModelEntity, { where: input.modelId ? { id: input.modelId, deletedAt: IsNull() } : { isDefault: true }, lock });
  if (!model) {
    throw input.modelId
      ? badInput(`${field}.modelId`, `names no model (${input.modelId})`)
      : badInput(`${field}.modelId`, 'is needed: there is no default model');
  }
  if (model.kind !== 'BASE') throw badInput(`${field}.modelId`, `names a LoRA adapter, not a base model (${model.id})`);
  if (!input.loraId) return { model, lora: null };
  const lora = await em.findOne(ModelEntity, { where: { id: input.loraId, deletedAt: IsNull() }, lock });
  if (!lora || lora.kind !== 'LORA') throw badInput(`${field}.loraId`, `names no LoRA adapter (${input.loraId})`);
  if (lora.pipeline !== model.pipeline) {
    throw badInput(`${field}.loraId`, `is a LoRA for ${lora.pipeline} models; model "${model.name}" is a ${model.pipeline} model`);
  }
  return { model, lora };
}

/**
 * Writes each generation, its QUEUED event and its job in one transaction: afterwards either all
 * of them exist or none do. The job's id is the generation's id. With an idempotency key, a
 * repeat of an earlier request returns what that request made instead.
 */
export async function submitGenerations(deps: SubmitDeps, s: Submission): Promise<{ generations: Generation[]; estimatedTotalSeconds: number }> {
  const { generations, params } = await deps.ds.transaction(async (em) => {
    const params: GenerationParams[] = [];
    for (const { input, field } of s.inputs) params.push(resolveParams(input, (await resolveModels(em, input, field)).model));

    const key = s.idempotency;
    const earlier = key
      ? await claimKey(em, key.scope, key.key, requestHash(key.operation, s.inputs.map((i) => i.input)), key.ttlHours)
      : undefined;
    if (earlier) {
      const rows = await em.findBy(GenerationEntity, { id: In(earlier) });
      return { params, generations: earlier.map((id) => rows.find((r) => r.id === id)).filter((g): g is Generation => g !== undefined) };
    }
    const generations: Generation[] = [];
    for (const p of params) generations.push(await enqueue(em, deps, p));
    if (key) await recordKey(em, key.scope, key.key, generations.map((g) => g.id));
    await em.query(`SELECT pg_notify('${Channel.jobs}', '')`);
    return { params, generations };
  });
  // After the commit: workers are already taking the jobs while this is worked out.
  return { generations, estimatedTotalSeconds: await estimateSeconds(deps.ds.manager, params) };
}

async function enqueue(em: EntityManager, { boss, jobPolicy }: SubmitDeps, p: GenerationParams): Promise<Generation> {
  const [row] = await em.query(
    `INSERT INTO generations (id, status, current_step, prompt, negative_prompt, model_id, lora_id, lora_weight, num_images,
       steps, guidance_scale, width, height, seed, priority, previews, scheduler, deadline_at)
     VALUES ($1, 'PENDING', 'QUEUED', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, now() + make_interval(secs => $16))
     RETURNING *`,
    [
      crypto.randomUUID(),
      p.prompt,
      p.negativePrompt,
      p.modelId,
      p.loraId,
      p.loraWeight,
      p.numImages,
      p.steps,
      p.guidanceScale,
      p.width,
      p.height,
      p.seed,
      p.priority,
      p.previews,
      p.scheduler,
      p.deadlineSeconds,
    ],
  );
  const generation = entityFromRow(em, GenerationEntity, row);
  const event = await appendEvent(em, generation.id, { step: 'QUEUED', status: 'PENDING', attempt: 0, progress: 0, message: 'Queued' });
  const data: GenerateJobData = { generationId: generation.id };
  await boss.send(GENERATE_QUEUE, data, { ...jobPolicy, id: generation.id, priority: p.priority, db: inTransaction(em) });
  return { ...generation, eventSeq: event!.seq };
}
