/** Jobs of every kind, as the app reads them through the `Job` interface (schema.graphql). */
import { KIND_FIELDS } from '../kinds/registry';
import { OUTPUT_FIELDS } from '../outputs/output-views';
import type { Output } from '../outputs/output-view-types';
import type { Connection, GenerationStatus, PipelineStep } from './operations';

export const TERMINAL: ReadonlySet<GenerationStatus> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

export interface JobError {
  code: string;
  message: string;
  retryable: boolean;
}

/** What every job has; a kind's view reads the fields of its own type beside these (kinds/). */
export interface Job {
  /** The GraphQL type: `Generation`, `GenericJob` (a kind without a type of its own), … */
  __typename: string;
  id: string;
  kind: string;
  status: GenerationStatus;
  currentStep: PipelineStep;
  progress: number;
  cancelRequested: boolean;
  priority: number;
  retryCount: number;
  /** Its parameters as it runs with them (defaults filled in). */
  params: Record<string, unknown>;
  error: JobError | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  deadlineAt: string | null;
}

export interface JobWithOutputs extends Job {
  outputs: Output[];
}

export interface JobDetail extends JobWithOutputs {
  timing: { modelLoadMs: number | null; loraLoadMs: number | null; encodeMs: number | null; generateMs: number | null; saveMs: number | null; totalMs: number | null } | null;
  attempts: { attempt: number; worker: string; outcome: string | null; startedAt: string; endedAt: string | null; error: JobError | null }[];
}

/**
 * A job's own fields and each known kind's, without its outputs (lists, cards while they run).
 * Read through the interface, so that a field of one kind's type (`generate`'s `Generation`)
 * may select them beside the other kinds' fragments.
 */
export const JOB_FIELDS = `... on Job {
  __typename id kind status currentStep progress cancelRequested priority retryCount params
  error { code message retryable } createdAt startedAt completedAt deadlineAt
  ${KIND_FIELDS}
}`;
const WITH_OUTPUTS = `${JOB_FIELDS} outputs { ${OUTPUT_FIELDS} }`;
const PAGE_INFO = 'pageInfo { hasNextPage hasPreviousPage endCursor startCursor }';

export const JOB = /* GraphQL */ `
  query Job($id: ID!) {
    job(id: $id) {
      ${WITH_OUTPUTS}
      timing { modelLoadMs loraLoadMs encodeMs generateMs saveMs totalMs }
      attempts { attempt worker outcome startedAt endedAt error { code message retryable } }
    }
  }
`;
export type JobData = { job: JobDetail | null };

/** Relay paging: forward from a cursor, or back from one. */
interface Paging {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

export const JOBS = /* GraphQL */ `
  query Jobs($kind: String, $status: GenerationStatus, $first: Int, $after: String, $last: Int, $before: String) {
    jobs(kind: $kind, status: $status, first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { ${WITH_OUTPUTS} } } ${PAGE_INFO}
    }
  }
`;
export type JobsVariables = Paging & { kind: string | null; status: GenerationStatus | null };
export type JobsData = { jobs: Connection<JobWithOutputs> };

/** Images made with one model, base or LoRA (`generations(modelId:)`). */
export const MODEL_JOBS = /* GraphQL */ `
  query ModelJobs($modelId: ID!, $status: GenerationStatus, $first: Int, $after: String, $last: Int, $before: String) {
    generations(modelId: $modelId, status: $status, first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { ${WITH_OUTPUTS} } } ${PAGE_INFO}
    }
  }
`;
/** Music made with one model, under the same name as MODEL_JOBS' answer. */
export const MODEL_AUDIO_JOBS = /* GraphQL */ `
  query ModelAudioJobs($modelId: ID!, $status: GenerationStatus, $first: Int, $after: String, $last: Int, $before: String) {
    generations: audioGenerations(modelId: $modelId, status: $status, first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { ${WITH_OUTPUTS} } } ${PAGE_INFO}
    }
  }
`;
export type ModelJobsVariables = Paging & { modelId: string; status: GenerationStatus | null };
export type ModelJobsData = { generations: Connection<JobWithOutputs> };

export const CANCEL_JOB = /* GraphQL */ `
  mutation CancelJob($id: ID!) { cancelJob(id: $id) { id status cancelRequested } }
`;
export type CancelJobData = { cancelJob: Pick<Job, 'id' | 'status' | 'cancelRequested'> };

export const DELETE_JOB = /* GraphQL */ `
  mutation DeleteJob($id: ID!) { deleteJob(id: $id) }
`;

export interface JobEvent {
  cursor: string;
  jobId: string;
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

const EVENT_FIELDS = 'cursor jobId step status stepIndex stepCount progress message etaSeconds preview attempt at';

export const PROGRESS = /* GraphQL */ `
  subscription Progress($id: ID!, $after: String) { generationProgress(id: $id, after: $after) { ${EVENT_FIELDS} } }
`;
export type ProgressData = { generationProgress: JobEvent };

// Without previews: a dashboard of every job has no use for each one's pictures.
export const EVENTS = /* GraphQL */ `
  subscription Events { generationEvents { ${EVENT_FIELDS.replace(' preview', '')} } }
`;
export type EventsData = { generationEvents: JobEvent };

export interface BlockedQueue {
  queue: string;
  kind: string;
  pending: number;
  oldestPendingAgeSeconds: number;
  reason: string;
}

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
    running: jobs(status: RUNNING, first: $first) { edges { node { ${JOB_FIELDS} } } }
    pending: jobs(status: PENDING, first: $first) { edges { node { ${JOB_FIELDS} } } }
  }
`;
export type QueueData = { queueStats: QueueStats; running: Connection<Job>; pending: Connection<Job> };

export interface Worker {
  id: string;
  host: string;
  pid: number;
  kinds: string[];
  queues: string[];
  providers: string[];
  modelsLoaded: { id: string; name: string }[];
  currentJobs: Job[];
  startedAt: string;
  lastHeartbeat: string;
}

/** Who takes what: the running workers, and the queues none of them takes. */
export const WORKERS = /* GraphQL */ `
  query Workers {
    workers { id host pid kinds queues providers modelsLoaded { id name } currentJobs { ${JOB_FIELDS} } startedAt lastHeartbeat }
    queueStats { blocked { queue kind pending oldestPendingAgeSeconds reason } }
  }
`;
export type WorkersData = { workers: Worker[]; queueStats: { blocked: BlockedQueue[] } };
