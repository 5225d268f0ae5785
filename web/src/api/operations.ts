/** The operations the app sends, and the shapes of what they return (schema.graphql). */

export type GenerationStatus = 'PENDING' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
export type PipelineStep = 'QUEUED' | 'LOADING_MODEL' | 'ENCODING_PROMPT' | 'GENERATING' | 'SAVING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
export type ModelKind = 'BASE' | 'LORA';
export type Scheduler = 'DDIM' | 'EULER' | 'EULER_ANCESTRAL' | 'LCM' | 'PNDM';

export const TERMINAL: ReadonlySet<GenerationStatus> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

export interface ModelFile {
  path: string;
  sizeBytes: number;
  downloadUrl: string;
}

export interface Model {
  id: string;
  name: string;
  kind: ModelKind;
  pipeline: string;
  /** What its pipeline makes; each modality has its own default model. */
  modality: 'image' | 'audio';
  isDefault: boolean;
  builtin: boolean;
  sizeBytes: number | null;
  sha256: string | null;
  triggerWord: string | null;
  createdAt: string;
  baseModel: { id: string; name: string } | null;
  downloadUrl: string | null;
  files: ModelFile[];
}

const MODEL_FIELDS = `id name kind pipeline modality isDefault builtin sizeBytes sha256 triggerWord createdAt baseModel { id name } downloadUrl files { path sizeBytes downloadUrl }`;

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

export interface Image {
  url: string;
  width: number;
  height: number;
  bytes: number;
  sha256: string;
  seed: number;
  mimeType: string;
}

export interface GenerationError {
  code: string;
  message: string;
  retryable: boolean;
}

export interface Generation {
  id: string;
  status: GenerationStatus;
  currentStep: PipelineStep;
  progress: number;
  cancelRequested: boolean;
  prompt: string;
  negativePrompt: string | null;
  model: { id: string; name: string; pipeline: string };
  lora: { id: string; name: string } | null;
  loraWeight: number | null;
  numImages: number;
  steps: number;
  guidanceScale: number;
  width: number;
  height: number;
  seed: number;
  scheduler: Scheduler | null;
  priority: number;
  previews: boolean;
  retryCount: number;
  error: GenerationError | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  deadlineAt: string | null;
  images: Image[];
}

const GENERATION_FIELDS = `
  id status currentStep progress cancelRequested prompt negativePrompt
  model { id name pipeline } lora { id name } loraWeight
  numImages steps guidanceScale width height seed scheduler priority previews retryCount
  error { code message retryable }
  createdAt startedAt completedAt deadlineAt
  images { url width height bytes sha256 seed mimeType }
`;

export interface GenerationDetail extends Generation {
  timing: { modelLoadMs: number | null; loraLoadMs: number | null; encodeMs: number | null; generateMs: number | null; saveMs: number | null; totalMs: number | null } | null;
  attempts: { attempt: number; worker: string; outcome: string | null; startedAt: string; endedAt: string | null; error: GenerationError | null }[];
}

export const GENERATION = /* GraphQL */ `
  query Generation($id: ID!) {
    generation(id: $id) {
      ${GENERATION_FIELDS}
      timing { modelLoadMs loraLoadMs encodeMs generateMs saveMs totalMs }
      attempts { attempt worker outcome startedAt endedAt error { code message retryable } }
    }
  }
`;
export type GenerationData = { generation: GenerationDetail | null };

export const GENERATIONS = /* GraphQL */ `
  query Generations($status: GenerationStatus, $first: Int, $after: String, $last: Int, $before: String) {
    generations(status: $status, first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { ${GENERATION_FIELDS} } } ${PAGE_INFO}
    }
  }
`;
export type GenerationsData = { generations: Connection<Generation> };

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
}

export const GENERATE = /* GraphQL */ `
  mutation Generate($input: GenerateInput!, $key: String) {
    generate(input: $input, idempotencyKey: $key) { ${GENERATION_FIELDS} }
  }
`;
export type GenerateData = { generate: Generation };

export const GENERATE_BATCH = /* GraphQL */ `
  mutation GenerateBatch($inputs: [GenerateInput!]!, $key: String) {
    generateBatch(inputs: $inputs, idempotencyKey: $key) { estimatedTotalSeconds generations { ${GENERATION_FIELDS} } }
  }
`;
export type GenerateBatchData = { generateBatch: { estimatedTotalSeconds: number; generations: Generation[] } };

export const CANCEL = /* GraphQL */ `
  mutation Cancel($id: ID!) { cancelGeneration(id: $id) { id status cancelRequested } }
`;

export const DELETE_GENERATION = /* GraphQL */ `
  mutation DeleteGeneration($id: ID!) { deleteGeneration(id: $id) }
`;

export interface GenerationEvent {
  cursor: string;
  generationId: string;
  step: PipelineStep;
  status: GenerationStatus;
  stepIndex: number | null;
  stepCount: number | null;
  progress: number;
  message: string | null;
  etaSeconds: number | null;
  preview: string | null;
  attempt: number;
  at: string;
}

const EVENT_FIELDS = 'cursor generationId step status stepIndex stepCount progress message etaSeconds preview attempt at';

export const PROGRESS = /* GraphQL */ `
  subscription Progress($id: ID!, $after: String) { generationProgress(id: $id, after: $after) { ${EVENT_FIELDS} } }
`;
export type ProgressData = { generationProgress: GenerationEvent };

// Without previews: a dashboard of every job has no use for each one's pictures.
export const EVENTS = /* GraphQL */ `
  subscription Events { generationEvents { ${EVENT_FIELDS.replace(' preview', '')} } }
`;
export type EventsData = { generationEvents: GenerationEvent };

export interface QueueStats {
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  oldestPendingAgeSeconds: number | null;
  averageProcessingSeconds: number | null;
}

export const QUEUE = /* GraphQL */ `
  query Queue($first: Int) {
    queueStats { pending running completed failed cancelled oldestPendingAgeSeconds averageProcessingSeconds }
    running: generations(status: RUNNING, first: $first) { edges { node { ${GENERATION_FIELDS} } } }
    pending: generations(status: PENDING, first: $first) { edges { node { ${GENERATION_FIELDS} } } }
  }
`;
export type QueueData = { queueStats: QueueStats; running: Connection<Generation>; pending: Connection<Generation> };

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
