import crypto from 'node:crypto';
import type { PgBoss } from 'pg-boss';
import { type DataSource, type EntityManager, In } from 'typeorm';
import { type Generation, GenerationEntity } from '../db/entities/generation.js';
import { type Model, ModelEntity } from '../db/entities/model.js';
import { badInput } from '../errors.js';
import { Channel } from '../events/channels.js';
import { appendEvent } from '../events/event-log.js';
import type { GenerationParams, ValidGenerateInput } from './generate-input.js';
import { resolveParams } from './generate-input.js';
import { GENERATE_QUEUE, type GenerateJobData, inTransaction } from './queue.js';

export interface SubmitDeps {
  ds: DataSource;
  boss: PgBoss;
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
 * Writes each generation, its QUEUED event and its job in one transaction: either all of them
 * exist afterwards or none do. The job's id is the generation's id.
 */
export async function submitGenerations(deps: SubmitDeps, inputs: { input: ValidGenerateInput; field: string }[]): Promise<Generation[]> {
  return deps.ds.transaction(async (em) => {
    const params: GenerationParams[] = [];
    for (const { input, field } of inputs) params.push(resolveParams(input, await resolveBaseModel(em, input.modelId, field)));
    const ids: string[] = [];
    for (const p of params) {
      const id = crypto.randomUUID();
      ids.push(id);
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
      });
      await appendEvent(em, id, { step: 'QUEUED', status: 'PENDING', attempt: 0, progress: 0, message: 'Queued' });
      const data: GenerateJobData = { generationId: id };
      await deps.boss.send(GENERATE_QUEUE, data, { id, priority: p.priority, db: inTransaction(em) });
    }
    await em.query(`SELECT pg_notify('${Channel.jobs}', '')`);
    const rows = await em.findBy(GenerationEntity, { id: In(ids) });
    return ids.map((id) => rows.find((r) => r.id === id)!);
  });
}
