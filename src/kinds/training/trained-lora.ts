import crypto from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { ModelEntity, type TrainedFrom } from '../../db/entities/model.js';
import { JobFailure } from '../../errors.js';
import { LORA_FILE } from '../../models/intake.js';
import { loraBaseFamily } from '../../models/lora-family.js';
import { modelKey } from '../../storage/keys.js';
import type { Storage } from '../../storage/storage.js';
import type { TrainingParams } from './params.js';

export interface TrainedLora {
  jobId: string;
  params: TrainingParams;
  pipeline: string;
  /** The adapter file as it is kept, its metadata included. */
  bytes: Uint8Array;
  metadata: Record<string, string>;
}

/**
 * Makes a trained adapter a LoRA model of its base, inside the transaction that completes the
 * training: its file goes to `models/<training id>/adapter.safetensors`, and the model (with the
 * training's id) records its trigger word and how it was trained. A training that does not
 * complete writes neither; generate can use the model as soon as the training is COMPLETED.
 */
export async function registerTrainedLora(em: EntityManager, storage: Storage, t: TrainedLora): Promise<void> {
  const p = t.params;
  const [dataset] = await em.query('SELECT name FROM datasets WHERE id = $1', [p.datasetId]);
  const key = modelKey(t.jobId);
  await storage.put(`${key}/${LORA_FILE}`, t.bytes, 'application/octet-stream').catch((err: unknown) => {
    throw new JobFailure('STORAGE_ERROR', `could not store the adapter: ${(err as Error).message}`, true, { cause: err });
  });
  const sha256 = crypto.createHash('sha256').update(t.bytes).digest('hex');
  const family = loraBaseFamily(t.metadata);
  const { datasetId, baseModelId, name, triggerWord, trainer, trainingWeights, ...parameters } = p;
  const training: TrainedFrom = {
    jobId: t.jobId,
    datasetId,
    datasetName: dataset?.name ?? '',
    datasetSha256: t.metadata['kiln.dataset_sha256'] ?? '',
    trainer,
    parameters: { ...parameters, ...(trainingWeights ? { trainingWeights } : {}) },
    metadata: t.metadata,
  };
  await em.insert(ModelEntity, {
    id: t.jobId,
    name,
    kind: 'LORA',
    pipeline: t.pipeline,
    baseModelId,
    triggerWord,
    storageKey: key,
    files: [{ path: LORA_FILE, sizeBytes: t.bytes.length, sha256 }],
    sizeBytes: t.bytes.length,
    sha256,
    defaults: family ? { baseFamily: family.family } : {},
    // TypeORM's insert types cannot see through jsonb columns' Record types.
    training: training as never,
  });
}
