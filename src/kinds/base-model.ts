import { type EntityManager, IsNull } from 'typeorm';
import { type Model, ModelEntity } from '../db/entities/model.js';
import { badInput } from '../errors.js';
import type { Modality } from '../pipelines/capabilities.js';

/** Held until the submitting transaction ends: what a job being queued uses cannot be deleted under it. */
export const SHARE = { mode: 'pessimistic_read' } as const;

/**
 * The base model an input names, or the default model of the kind's modality when it names
 * none, share-locked. BAD_USER_INPUT on `<field>.<key>` for no such model or a LoRA adapter;
 * the kind checks the modality of a named one against its capabilities.
 */
export async function lockBaseModel(em: EntityManager, modelId: string | null, modality: Modality, field: string, key = 'modelId'): Promise<Model> {
  const model = await em.findOne(ModelEntity, { where: modelId ? { id: modelId, deletedAt: IsNull() } : { isDefault: true, modality }, lock: SHARE });
  if (!model) throw modelId ? badInput(`${field}.${key}`, `names no model (${modelId})`) : badInput(`${field}.${key}`, `is needed: there is no default ${modality} model`);
  if (model.kind !== 'BASE') throw badInput(`${field}.${key}`, `names a LoRA adapter, not a base model (${model.id})`);
  return model;
}
