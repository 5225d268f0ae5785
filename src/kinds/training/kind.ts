import crypto from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { type Dataset, DatasetEntity } from '../../db/entities/dataset.js';
import type { Model } from '../../db/entities/model.js';
import { badInput } from '../../errors.js';
import type { KindDefinition, Prepared } from '../../jobs/kind.js';
import { pipelineLoraGraphs } from '../../models/lora-targets.js';
import { lockBaseModel, SHARE } from '../base-model.js';
import { trainerRequirements } from '../../trainers/registry.js';
import { type TrainerName, trainerNames } from '../../trainers/trainer.js';
import { estimateTrainingSeconds } from './estimate.js';
import { TRAINING_REQUIRED, type TrainingParams, trainingParams } from './params.js';

export const queueOf = (trainer: TrainerName) => `training.${trainer}`;

/** Environment settings naming each external trainer's command, for messages. */
const SETTING: Partial<Record<TrainerName, string>> = { 'ai-toolkit': 'KILN_TRAINER_AI_TOOLKIT', 'sd-scripts': 'KILN_TRAINER_SD_SCRIPTS' };

/** A trainer's defaults for what the client left out. */
const DEFAULTS: Record<TrainerName, { steps: number; rank: number; learningRate: number; resolution: number; batchSize: number }> = {
  builtin: { steps: 200, rank: 8, learningRate: 0.01, resolution: 32, batchSize: 4 },
  'ai-toolkit': { steps: 1000, rank: 16, learningRate: 1e-4, resolution: 512, batchSize: 1 },
  'sd-scripts': { steps: 1000, rank: 16, learningRate: 1e-4, resolution: 512, batchSize: 1 },
};

/** The builtin trainer's cost grows with resolution², and its network renders at any size from what it learnt small. */
const BUILTIN_MAX_RESOLUTION = 128;

/**
 * Trains a LoRA adapter of a base model on a dataset, with one of the trainers (a queue per
 * trainer: a worker takes a training only when its host has that trainer). On success the
 * adapter becomes a LoRA model of the base, in the same transaction as COMPLETED.
 */
export const trainingKind: KindDefinition<TrainingParams> = {
  name: 'training',
  params: trainingParams,
  required: TRAINING_REQUIRED,
  steps: { PREPARING_DATASET: 0.01, LOADING_MODEL: 0.03, TRAINING: [0.05, 0.95], SAVING: 0.97 },
  queues: trainerNames.map(queueOf),
  servedQueues: (worker) => trainerNames.filter((t) => worker.trainers.includes(t)).map(queueOf),
  queueNeeds: (queue) => {
    const trainer = trainerNames.find((t) => queueOf(t) === queue);
    const setting = trainer && SETTING[trainer];
    return trainer ? `the ${trainer} trainer${setting ? ` (${setting} set on its host)` : ''}` : `what ${queue} needs`;
  },
  prepare,
  estimateSeconds: estimateTrainingSeconds,
  timeouts: (_defaults, config) => ({ hardTimeoutSeconds: config.training.timeoutSeconds, softTimeoutSeconds: Math.max(1, Math.floor(config.training.timeoutSeconds * 0.95)) }),
  task: () => import('./task.js'),
  graphql: () => import('./graphql.js'),
};

/**
 * Completes an input from its trainer's defaults and checks it against its dataset, base model
 * and trainer. The dataset and the base model are share-locked until the transaction ends:
 * neither can be deleted under a training being queued.
 */
async function prepare(em: EntityManager, input: Partial<TrainingParams>, field: string): Promise<Prepared<TrainingParams>> {
  const dataset = await em.findOne(DatasetEntity, { where: { id: input.datasetId! }, lock: SHARE });
  if (!dataset) throw badInput(`${field}.datasetId`, `names no dataset (${input.datasetId})`);
  if (dataset.status !== 'READY') throw badInput(`${field}.datasetId`, `names dataset "${dataset.name}", whose upload is not complete (${dataset.status.toLowerCase()})`);
  const base = await lockBase(em, input.baseModelId ?? null, field);
  const trainer = input.trainer ?? trainerNames.find((t) => trainerRequirements[t].pipelines.includes(base.pipeline));
  if (!trainer) throw badInput(`${field}.baseModelId`, `names a ${base.pipeline} model ("${base.name}"), for which no trainer trains LoRAs`);
  const trains = trainerRequirements[trainer].pipelines;
  if (!trains.includes(base.pipeline)) throw badInput(`${field}.trainer`, `${trainer} trains LoRAs for ${trains.join(', ')} models, not for ${base.pipeline} models like "${base.name}"`);
  const d = DEFAULTS[trainer];
  const steps = input.steps ?? d.steps;
  const rank = input.rank ?? d.rank;
  const resolution = input.resolution ?? d.resolution;
  if (trainer === 'builtin') {
    if (resolution > BUILTIN_MAX_RESOLUTION) throw badInput(`${field}.resolution`, `must be at most ${BUILTIN_MAX_RESOLUTION} for the builtin trainer (its cost grows with resolution²; what it learns renders at any size)`);
    if (input.trainingWeights) throw badInput(`${field}.trainingWeights`, 'is only for the ai-toolkit and sd-scripts trainers');
  }
  checkShortSides(dataset, resolution, `${field}.resolution`);
  const params: TrainingParams = {
    datasetId: dataset.id,
    baseModelId: base.id,
    name: input.name!,
    triggerWord: input.triggerWord!,
    trainer,
    steps,
    rank,
    alpha: input.alpha ?? rank,
    learningRate: input.learningRate ?? d.learningRate,
    resolution,
    batchSize: input.batchSize ?? d.batchSize,
    seed: input.seed ?? crypto.randomInt(0, 2 ** 32),
    checkpointEvery: input.checkpointEvery ?? Math.ceil(steps / 10),
    sampleEvery: input.sampleEvery ?? Math.ceil(steps / 4),
    trainingWeights: input.trainingWeights ?? null,
  };
  return { params, models: [{ role: 'base', modelId: base.id }], queue: queueOf(trainer) };
}

/** The image model the adapter is trained for (the default one unless named); it must take LoRAs. */
async function lockBase(em: EntityManager, modelId: string | null, field: string): Promise<Model> {
  const model = await lockBaseModel(em, modelId, 'image', field, 'baseModelId');
  if (!pipelineLoraGraphs[model.pipeline]) throw badInput(`${field}.baseModelId`, `names a ${model.pipeline} model, which takes no LoRA adapters`);
  return model;
}

/** Every image must reach the resolution on its short side; the refusal names those that do not. */
function checkShortSides(dataset: Dataset, resolution: number, field: string) {
  const small = dataset.images.filter((i) => Math.min(i.width, i.height) < resolution);
  if (!small.length) return;
  const list = small.slice(0, 5).map((i) => `${i.name} (${i.width}×${i.height})`).join(', ') + (small.length > 5 ? `, and ${small.length - 5} more` : '');
  throw badInput(field, `is ${resolution}, more than the short side of ${small.length} image(s) of dataset "${dataset.name}": ${list}`);
}
