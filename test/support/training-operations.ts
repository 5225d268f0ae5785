/** Training operations the tests send, as a client would write them, and a dataset to train on. */
import { createDatasetMultipart } from './dataset-uploads.js';
import { ok } from './graphql.js';
import { paint, PICTURES } from './training-datasets.js';

export const TRAIN = /* GraphQL */ `
  mutation Train($input: TrainLoraInput!) {
    trainLora(input: $input) { id kind status trainer steps rank alpha learningRate resolution batchSize seed checkpointEvery sampleEvery dataset { id } baseModel { id } }
  }
`;

export const TRAINING = /* GraphQL */ `
  query Training($id: ID!) {
    training(id: $id) {
      id status currentStep progress retryCount name triggerWord trainer steps
      error { code message retryable }
      attempts { attempt outcome error { code } }
      timing { modelLoadMs generateMs saveMs totalMs }
      loss { step loss }
      dataset { id sha256 }
      model {
        id name kind pipeline triggerWord sha256 sizeBytes baseModel { id }
        training { trainer datasetName datasetSha256 parameters metadata training { id } dataset { id } }
      }
    }
  }
`;

export const TRAINING_PROGRESS = /* GraphQL */ `
  subscription Progress($id: ID!) {
    generationProgress(id: $id) { cursor step status attempt stepIndex stepCount progress message etaSeconds preview detail }
  }
`;

export interface TrainingEvent {
  cursor: string;
  step: string;
  status: string;
  attempt: number;
  stepIndex: number | null;
  stepCount: number | null;
  progress: number;
  message: string | null;
  etaSeconds: number | null;
  preview: string | null;
  detail: Record<string, any> | null;
}

export const trainingEventOf = (v: { generationProgress: TrainingEvent }) => v.generationProgress;

/** Steps of a training's events, each TRAINING step event as `T<i>`, samples and checkpoints as `S<i>` and `C<i>`. */
export const trainingLabel = (e: TrainingEvent) =>
  e.step !== 'TRAINING' ? e.step : e.detail?.sampleStep ? `S${e.detail.sampleStep}` : e.detail?.checkpointStep ? `C${e.detail.checkpointStep}` : `T${e.stepIndex}`;

/** A dataset of `count` distinct pictures (64×64) with their captions, created through the API. */
export async function trainingDataset(baseUrl: string, count = 5, name = 'pictures'): Promise<{ id: string; sha256: string; captions: string[] }> {
  const pictures = PICTURES.slice(0, count);
  const files = [];
  for (const [i, p] of pictures.entries()) {
    files.push({ name: `${String(i).padStart(2, '0')}.png`, bytes: await paint(p.paint, 64) }, { name: `${String(i).padStart(2, '0')}.txt`, bytes: p.caption });
  }
  const { createDataset } = await ok(Promise.resolve(await createDatasetMultipart(baseUrl, files, { name })));
  return { id: createDataset.id, sha256: createDataset.sha256, captions: pictures.map((p) => p.caption) };
}
