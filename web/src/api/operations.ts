/** The operations the app sends, and the shapes of what they return (schema.graphql); jobs of every kind are in job-operations.ts. */
import { JOB_FIELDS } from './job-operations';
import type { Trainer } from './training-operations';

export type GenerationStatus = 'PENDING' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
export type PipelineStep =
  | 'QUEUED'
  | 'PREPARING_DATASET'
  | 'DOWNLOADING'
  | 'VERIFYING'
  | 'REGISTERING'
  | 'LOADING_MODEL'
  | 'ENCODING_PROMPT'
  | 'GENERATING'
  | 'TRAINING'
  | 'SAVING'
  | 'COMPLETED'
  | 'FAILED'
  | 'CANCELLED';
export type ModelKind = 'BASE' | 'LORA';
export type Scheduler = 'DDIM' | 'EULER' | 'EULER_ANCESTRAL' | 'LCM' | 'PNDM';

export interface ModelFile {
  path: string;
  sizeBytes: number;
  downloadUrl: string;
}

/** Inclusive bounds and the value a request that leaves it out gets. */
export interface Range {
  min: number;
  max: number;
  default: number;
}

export interface SizeRange extends Range {
  multipleOf: number;
}

/** What an image model accepts (Model.capabilities); requests outside it are refused at submit. */
export interface ImageCapabilities {
  __typename: 'ImageCapabilities';
  /** Lower-case names; GenerateInput.scheduler takes them in upper case. Empty: it has its own sampler. */
  schedulers: string[];
  defaultScheduler: string | null;
  steps: Range;
  guidanceScale: Range;
  width: SizeRange;
  height: SizeRange;
  maxImages: number;
  negativePrompt: boolean;
  /** SDXL: originalSize, cropsCoordsTopLeft and targetSize. */
  sizeConditioning: boolean;
  lora: boolean;
}

export interface AudioCapabilities {
  __typename: 'AudioCapabilities';
  durationSeconds: Range;
  guidanceScale: Range;
  topK: Range;
  temperature: Range;
  sampleRate: number;
  channels: number;
  lora: boolean;
}

export type ModelCapabilities = ImageCapabilities | AudioCapabilities;

export interface Model {
  id: string;
  name: string;
  kind: ModelKind;
  pipeline: string;
  /** What its pipeline makes; each modality has its own default model. */
  modality: 'image' | 'audio';
  /** A base model's; null for a LoRA adapter (its base model's apply). */
  capabilities: ModelCapabilities | null;
  isDefault: boolean;
  builtin: boolean;
  sizeBytes: number | null;
  sha256: string | null;
  triggerWord: string | null;
  createdAt: string;
  baseModel: { id: string; name: string } | null;
  /** A LoRA Kiln trained: on what, and its training (null once deleted). */
  training: { datasetName: string; trainer: Trainer; training: { id: string } | null } | null;
  downloadUrl: string | null;
  files: ModelFile[];
}

const RANGE = 'min max default';
const CAPABILITIES = `capabilities {
  __typename
  ... on ImageCapabilities {
    schedulers defaultScheduler steps { ${RANGE} } guidanceScale { ${RANGE} }
    width { ${RANGE} multipleOf } height { ${RANGE} multipleOf } maxImages negativePrompt sizeConditioning lora
  }
  ... on AudioCapabilities { durationSeconds { ${RANGE} } guidanceScale { ${RANGE} } topK { ${RANGE} } temperature { ${RANGE} } sampleRate channels lora }
}`;

const MODEL_FIELDS = `modality ${CAPABILITIES} id name kind pipeline isDefault builtin sizeBytes sha256 triggerWord createdAt baseModel { id name } training { datasetName trainer training { id } } downloadUrl files { path sizeBytes downloadUrl }`;

export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; endCursor: string | null; startCursor: string | null };
}

const PAGE_INFO = 'pageInfo { hasNextPage hasPreviousPage endCursor startCursor }';

export const MODELS = /* GraphQL */ `
  query Models($kind: ModelKind, $first: Int, $after: String) {
    models(kind: $kind, first: $first, after: $after) { edges { cursor node { ${MODEL_FIELDS} } } ${PAGE_INFO} }
  }
`;
export type ModelsData = { models: Connection<Model> };

/** GenerateInput, as the form fills it. */
export interface GenerateInput {
  prompt: string;
  negativePrompt?: string | null;
  modelId?: string | null;
  loraId?: string | null;
  loraWeight?: number | null;
  numImages?: number | null;
  steps?: number | null;
  guidanceScale?: number | null;
  width?: number | null;
  height?: number | null;
  seed?: number | null;
  priority?: number | null;
  deadlineSeconds?: number | null;
  previews?: boolean | null;
  scheduler?: Scheduler | null;
  originalSize?: number[] | null;
  cropsCoordsTopLeft?: number[] | null;
  targetSize?: number[] | null;
}

export const GENERATE = /* GraphQL */ `
  mutation Generate($input: GenerateInput!, $key: String) {
    generate(input: $input, idempotencyKey: $key) { ${JOB_FIELDS} }
  }
`;
export const GENERATE_BATCH = /* GraphQL */ `
  mutation GenerateBatch($inputs: [GenerateInput!]!, $key: String) {
    generateBatch(inputs: $inputs, idempotencyKey: $key) { estimatedTotalSeconds generations { ${JOB_FIELDS} } }
  }
`;
/** GenerateAudioInput, as the music form fills it. */
export interface GenerateAudioInput {
  prompt: string;
  modelId?: string | null;
  durationSeconds?: number | null;
  guidanceScale?: number | null;
  topK?: number | null;
  temperature?: number | null;
  seed?: number | null;
  priority?: number | null;
  deadlineSeconds?: number | null;
}

export const GENERATE_AUDIO = /* GraphQL */ `
  mutation GenerateAudio($input: GenerateAudioInput!, $key: String) {
    generateAudio(input: $input, idempotencyKey: $key) { ${JOB_FIELDS} }
  }
`;
export const GENERATE_AUDIO_BATCH = /* GraphQL */ `
  mutation GenerateAudioBatch($inputs: [GenerateAudioInput!]!, $key: String) {
    generateAudioBatch(inputs: $inputs, idempotencyKey: $key) { estimatedTotalSeconds generations { ${JOB_FIELDS} } }
  }
`;
export interface UploadModelInput {
  name: string;
  kind: ModelKind;
  baseModelId?: string | null;
  triggerWord?: string | null;
  path?: string | null;
  uploadId?: string | null;
}

export const UPLOAD_MODEL = /* GraphQL */ `
  mutation UploadModel($file: Upload!, $input: UploadModelInput!) { uploadModel(file: $file, input: $input) { ${MODEL_FIELDS} } }
`;

export const CREATE_MODEL_UPLOAD = /* GraphQL */ `
  mutation CreateModelUpload($input: UploadModelInput!, $sizeBytes: Float!) {
    createModelUpload(input: $input, sizeBytes: $sizeBytes) { id url method headers expiresAt path }
  }
`;
export type CreateModelUploadData = { createModelUpload: { id: string; url: string; method: string; headers: Record<string, string>; expiresAt: string; path: string } };

export const COMPLETE_MODEL_UPLOAD = /* GraphQL */ `
  mutation CompleteModelUpload($id: ID!) { completeModelUpload(id: $id) { ${MODEL_FIELDS} } }
`;
export type CompleteModelUploadData = { completeModelUpload: Model };

export const DELETE_MODEL = /* GraphQL */ `
  mutation DeleteModel($id: ID!) { deleteModel(id: $id) }
`;

export type CheckStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface HealthReport {
  status: CheckStatus;
  version: string;
  role: string;
  uptimeSeconds: number;
  checks: Record<string, { status: CheckStatus; message: string; details?: Record<string, unknown> }>;
}

export const HEALTH = /* GraphQL */ `
  query Health { health }
`;
export type HealthData = { health: HealthReport };
