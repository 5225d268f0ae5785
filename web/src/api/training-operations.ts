/** Datasets and LoRA trainings, as the Train page reads and sends them (schema.graphql). */
import type { Training } from '../kinds/training-kind';
import { OUTPUT_FIELDS } from '../outputs/output-views';
import type { Output } from '../outputs/output-view-types';
import { type JobEvent, JOB_FIELDS } from './job-operations';
import type { Connection } from './operations';

export type DatasetStatus = 'UPLOADING' | 'CHECKING' | 'READY';

export interface DatasetImage {
  name: string;
  file: string;
  width: number;
  height: number;
  caption: string;
  url: string;
}

export interface Dataset {
  id: string;
  name: string;
  status: DatasetStatus;
  imageCount: number;
  sizeBytes: number;
  smallestSide: number | null;
  resolution: number | null;
  createdAt: string;
  images: DatasetImage[];
  pendingFiles: { name: string; sizeBytes: number }[];
}

const DATASET_FIELDS = 'id name status imageCount sizeBytes smallestSide resolution createdAt images { name file width height caption url } pendingFiles { name sizeBytes }';

export const DATASETS = /* GraphQL */ `
  query Datasets($first: Int) { datasets(first: $first) { edges { cursor node { ${DATASET_FIELDS} } } } }
`;
export type DatasetsData = { datasets: Connection<Dataset> };

export interface DatasetInput {
  name: string;
  resolution?: number | null;
}

/** Sent as a multipart request (upload.ts): the files are the request's parts. */
export const CREATE_DATASET = /* GraphQL */ `
  mutation CreateDataset($input: DatasetInput!, $files: [Upload!]!) { createDataset(input: $input, files: $files) { ${DATASET_FIELDS} } }
`;

export const CREATE_DATASET_UPLOAD = /* GraphQL */ `
  mutation CreateDatasetUpload($input: DatasetInput!, $files: [DatasetFileInput!]!) {
    createDatasetUpload(input: $input, files: $files) { id files { name url method headers } }
  }
`;
export type CreateDatasetUploadData = { createDatasetUpload: { id: string; files: { name: string; url: string; method: string; headers: Record<string, string> }[] } };

export const COMPLETE_DATASET_UPLOAD = /* GraphQL */ `
  mutation CompleteDatasetUpload($id: ID!) { completeDatasetUpload(id: $id) { ${DATASET_FIELDS} } }
`;
export type CompleteDatasetUploadData = { completeDatasetUpload: Dataset };

export const DELETE_DATASET = /* GraphQL */ `
  mutation DeleteDataset($id: ID!) { deleteDataset(id: $id) }
`;

export type Trainer = 'BUILTIN' | 'AI_TOOLKIT' | 'SD_SCRIPTS';

/** TrainLoraInput, as the training form fills it. */
export interface TrainLoraInput {
  datasetId: string;
  name: string;
  triggerWord: string;
  baseModelId?: string | null;
  trainer?: Trainer | null;
  steps?: number | null;
  rank?: number | null;
  alpha?: number | null;
  learningRate?: number | null;
  resolution?: number | null;
  batchSize?: number | null;
  seed?: number | null;
  checkpointEvery?: number | null;
  sampleEvery?: number | null;
  trainingWeights?: string | null;
  priority?: number | null;
  deadlineSeconds?: number | null;
}

export const TRAIN_LORA = /* GraphQL */ `
  mutation TrainLora($input: TrainLoraInput!, $key: String) { trainLora(input: $input, idempotencyKey: $key) { ${JOB_FIELDS} } }
`;
export type TrainLoraData = { trainLora: Training };

export const TRAININGS = /* GraphQL */ `
  query Trainings($first: Int) { trainings(first: $first) { edges { cursor node { ${JOB_FIELDS} } } } }
`;
export type TrainingsData = { trainings: Connection<Training> };

export const TRAINING = /* GraphQL */ `
  query Training($id: ID!) { training(id: $id) { ${JOB_FIELDS} outputs { ${OUTPUT_FIELDS} } } }
`;
export type TrainingData = { training: (Training & { outputs: Output[] }) | null };

/** A training's event: what every job's has, and what its kind reports beside the step (`detail`). */
export interface TrainingEvent extends JobEvent {
  detail: { loss?: number; learningRate?: number; sampleStep?: number; prompts?: string[]; checkpointStep?: number } | null;
}

export const TRAINING_PROGRESS = /* GraphQL */ `
  subscription TrainingProgress($id: ID!) {
    generationProgress(id: $id) { cursor jobId step status stepIndex stepCount progress message etaSeconds preview attempt at detail }
  }
`;
export type TrainingProgressData = { generationProgress: TrainingEvent };

/** Every training's events, without previews, for the list of trainings. */
export const TRAINING_EVENTS = /* GraphQL */ `
  subscription TrainingEvents { generationEvents(kind: "training") { cursor jobId step status stepIndex stepCount progress message etaSeconds attempt at } }
`;
export type TrainingEventsData = { generationEvents: JobEvent };
