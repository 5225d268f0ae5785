import crypto from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { badInput } from '../../errors.js';
import { affinityOf } from '../../jobs/affinity.js';
import type { KindDefinition, Prepared } from '../../jobs/kind.js';
import type { Range } from '../../pipelines/capabilities.js';
import { PIPELINES, pipelineNamed } from '../../pipelines/catalog.js';
import { lockBaseModel } from '../base-model.js';
import { estimateAudioSeconds } from './estimate.js';
import { AUDIO_REQUIRED, type AudioParams, audioParams } from './params.js';
import { audioSessionKey } from './session-key.js';

const audioPipelines = PIPELINES.filter((p) => p.modality === 'audio').map((p) => p.name);
const queueOf = (pipeline: string) => `audio.${pipeline}`;

/** Text to music with a music model (MusicGen, the built-in one): one WAV per job. */
export const audioKind: KindDefinition<AudioParams> = {
  name: 'audio',
  params: audioParams,
  required: AUDIO_REQUIRED,
  steps: { LOADING_MODEL: 0.02, ENCODING_PROMPT: 0.06, GENERATING: [0.08, 0.94], SAVING: 0.96 },
  queues: audioPipelines.map(queueOf),
  servedQueues: (worker) => audioPipelines.filter((p) => worker.pipelines.includes(p)).map(queueOf),
  prepare,
  estimateSeconds: estimateAudioSeconds,
  task: () => import('./task.js'),
  graphql: () => import('./graphql.js'),
};

/**
 * Completes an input from its model's defaults and checks it against what the model accepts,
 * so that nothing the worker would refuse is queued. The model is share-locked until the
 * transaction ends: it cannot be deleted under a job being queued.
 */
async function prepare(em: EntityManager, input: Partial<AudioParams>, field: string): Promise<Prepared<AudioParams>> {
  const model = await lockBaseModel(em, input.modelId ?? null, 'audio', field);
  const caps = pipelineNamed(model.pipeline).capabilities(model.defaults);
  if (caps.modality !== 'audio') throw badInput(`${field}.modelId`, `names an ${caps.modality} model ("${model.name}"), not a music model`);
  const within = (key: 'durationSeconds' | 'guidanceScale' | 'topK' | 'temperature', range: Range) => {
    const value = input[key] ?? range.default;
    if (value < range.min || value > range.max) throw badInput(`${field}.${key}`, `must be between ${range.min} and ${range.max} for model "${model.name}"`);
    return value;
  };
  const params: AudioParams = {
    prompt: input.prompt!,
    modelId: model.id,
    durationSeconds: within('durationSeconds', caps.durationSeconds),
    guidanceScale: within('guidanceScale', caps.guidanceScale),
    seed: input.seed ?? crypto.randomInt(0, 2 ** 32),
    topK: within('topK', caps.topK),
    temperature: within('temperature', caps.temperature),
  };
  return {
    params,
    models: [{ role: 'model', modelId: model.id }],
    queue: queueOf(model.pipeline),
    affinity: affinityOf(audioSessionKey(model.sha256)),
  };
}
