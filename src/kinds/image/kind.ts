import crypto from 'node:crypto';
import { type EntityManager, IsNull } from 'typeorm';
import { type Model, ModelEntity } from '../../db/entities/model.js';
import { badInput } from '../../errors.js';
import { affinityOf } from '../../jobs/affinity.js';
import type { KindDefinition, Prepared } from '../../jobs/kind.js';
import type { ImageCapabilities, Range } from '../../pipelines/capabilities.js';
import { PIPELINES, pipelineNamed } from '../../pipelines/catalog.js';
import { lockBaseModel, SHARE } from '../base-model.js';
import { estimateImageSeconds } from './estimate.js';
import { IMAGE_REQUIRED, type ImageParams, imageParams } from './params.js';
import { imageSessionKey } from './session-key.js';

const imagePipelines = PIPELINES.filter((p) => p.modality === 'image').map((p) => p.name);
const queueOf = (pipeline: string) => `image.${pipeline}`;

/** Text to image with a base model and, optionally, a LoRA adapter of it. */
export const imageKind: KindDefinition<ImageParams> = {
  name: 'image',
  params: imageParams,
  required: IMAGE_REQUIRED,
  steps: { LOADING_MODEL: 0.02, ENCODING_PROMPT: 0.08, GENERATING: [0.1, 0.9], SAVING: 0.92 },
  queues: imagePipelines.map(queueOf),
  servedQueues: (worker) => imagePipelines.filter((p) => worker.pipelines.includes(p)).map(queueOf),
  prepare,
  estimateSeconds: estimateImageSeconds,
  task: () => import('./task.js'),
  graphql: () => import('./graphql.js'),
};

/**
 * Completes an input from its model's defaults and checks it against what the model's pipeline
 * accepts, so that nothing the worker would refuse is queued. The model and LoRA are
 * share-locked until the transaction ends: neither can be deleted under a job being queued.
 */
async function prepare(em: EntityManager, input: Partial<ImageParams>, field: string): Promise<Prepared<ImageParams>> {
  const model = await lockBaseModel(em, input.modelId ?? null, 'image', field);
  const caps = pipelineNamed(model.pipeline).capabilities(model.defaults);
  if (caps.modality !== 'image') throw badInput(`${field}.modelId`, `names an ${caps.modality} model ("${model.name}"), not an image model`);
  const lora = input.loraId ? await lockLora(em, input.loraId, model, caps, `${field}.loraId`) : null;

  const within = (key: 'steps' | 'guidanceScale' | 'width' | 'height', range: Range & { multipleOf?: number }) => {
    const value = input[key] ?? range.default;
    if (value < range.min || value > range.max) throw badInput(`${field}.${key}`, `must be between ${range.min} and ${range.max} for model "${model.name}"`);
    if (range.multipleOf && value % range.multipleOf !== 0) throw badInput(`${field}.${key}`, `must be a multiple of ${range.multipleOf} for model "${model.name}"`);
    return value;
  };
  const numImages = input.numImages ?? 1;
  if (numImages > caps.maxImages) throw badInput(`${field}.numImages`, `must be at most ${caps.maxImages} for model "${model.name}"`);
  if (input.negativePrompt && !caps.negativePrompt) throw badInput(`${field}.negativePrompt`, `is not taken by model "${model.name}" (${model.pipeline})`);
  const scheduler = input.scheduler ?? null;
  if (scheduler !== null && !caps.schedulers.includes(scheduler)) {
    throw badInput(
      `${field}.scheduler`,
      caps.schedulers.length ? `must be one of ${caps.schedulers.join(', ')} for model "${model.name}"` : `cannot be chosen for model "${model.name}" (${model.pipeline}), which has a sampler of its own`,
    );
  }
  const conditioned = (['originalSize', 'cropsCoordsTopLeft', 'targetSize'] as const).find((key) => input[key]);
  if (conditioned && !caps.sizeConditioning) throw badInput(`${field}.${conditioned}`, `is not taken by model "${model.name}" (${model.pipeline}): only SDXL models condition on sizes`);
  const params: ImageParams = {
    prompt: input.prompt!,
    negativePrompt: input.negativePrompt || null,
    modelId: model.id,
    loraId: lora?.id ?? null,
    loraWeight: lora ? (input.loraWeight ?? 1) : null,
    numImages,
    steps: within('steps', caps.steps),
    guidanceScale: within('guidanceScale', caps.guidanceScale),
    width: within('width', caps.width),
    height: within('height', caps.height),
    seed: input.seed ?? crypto.randomInt(0, 2 ** 32),
    previews: input.previews ?? true,
    scheduler,
    originalSize: input.originalSize ?? null,
    cropsCoordsTopLeft: input.cropsCoordsTopLeft ?? null,
    targetSize: input.targetSize ?? null,
  };
  return {
    params,
    models: [{ role: 'model', modelId: model.id }, ...(lora ? [{ role: 'lora', modelId: lora.id }] : [])],
    queue: queueOf(model.pipeline),
    affinity: affinityOf(imageSessionKey(model.sha256, lora ? { sha256: lora.sha256, weight: params.loraWeight! } : null)),
  };
}

async function lockLora(em: EntityManager, loraId: string, model: Model, caps: ImageCapabilities, field: string): Promise<Model> {
  if (!caps.lora) throw badInput(field, `cannot be used: model "${model.name}" (${model.pipeline}) takes no LoRA adapters`);
  const lora = await em.findOne(ModelEntity, { where: { id: loraId, deletedAt: IsNull() }, lock: SHARE });
  if (!lora || lora.kind !== 'LORA') throw badInput(field, `names no LoRA adapter (${loraId})`);
  if (lora.pipeline !== model.pipeline) throw badInput(field, `is a LoRA for ${lora.pipeline} models; model "${model.name}" is a ${model.pipeline} model`);
  return lora;
}
