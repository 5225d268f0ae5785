import { EntitySchema } from 'typeorm';
import { bigintNumber, createdAt } from './columns.js';

export const generationStatuses = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type GenerationStatus = (typeof generationStatuses)[number];
export const terminalStatuses: readonly GenerationStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED'];

export const pipelineSteps = [
  'QUEUED',
  'LOADING_MODEL',
  'ENCODING_PROMPT',
  'GENERATING',
  'SAVING',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
] as const;
export type PipelineStep = (typeof pipelineSteps)[number];

export interface Timing {
  modelLoadMs?: number;
  loraLoadMs?: number;
  encodeMs?: number;
  generateMs?: number;
  saveMs?: number;
  totalMs?: number;
}

export interface Generation {
  id: string;
  status: GenerationStatus;
  currentStep: PipelineStep;
  progress: number;
  prompt: string;
  negativePrompt: string | null;
  modelId: string;
  loraId: string | null;
  loraWeight: number | null;
  numImages: number;
  steps: number;
  guidanceScale: number;
  width: number;
  height: number;
  seed: number;
  priority: number;
  /** Whether GENERATING events carry a small preview image. */
  previews: boolean;
  /** The sampler asked for (diffusion pipelines); null: the model's own. */
  scheduler: string | null;
  retryCount: number;
  /** Fencing token: bumped each time a worker takes the job; writes carry the one they hold. */
  lease: number;
  leaseExpiresAt: Date | null;
  /** Per-generation event counter; the last event's cursor. */
  eventSeq: number;
  /** Set when cancellation was asked for while it ran; its worker stops at the next step. */
  cancelRequestedAt: Date | null;
  /** Not started by then: cancelled without running. */
  deadlineAt: Date | null;
  errorCode: string | null;
  errorMessage: string | null;
  errorRetryable: boolean | null;
  timing: Timing | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
}

export const GenerationEntity = new EntitySchema<Generation>({
  name: 'Generation',
  tableName: 'generations',
  columns: {
    id: { type: 'uuid', primary: true, generated: 'uuid' },
    status: { type: 'text' },
    currentStep: { type: 'text', name: 'current_step' },
    progress: { type: 'double precision', default: 0 },
    prompt: { type: 'text' },
    negativePrompt: { type: 'text', name: 'negative_prompt', nullable: true },
    modelId: { type: 'uuid', name: 'model_id' },
    loraId: { type: 'uuid', name: 'lora_id', nullable: true },
    loraWeight: { type: 'double precision', name: 'lora_weight', nullable: true },
    numImages: { type: 'int', name: 'num_images' },
    steps: { type: 'int' },
    guidanceScale: { type: 'double precision', name: 'guidance_scale' },
    width: { type: 'int' },
    height: { type: 'int' },
    seed: { ...bigintNumber },
    priority: { type: 'int', default: 0 },
    previews: { type: 'boolean', default: true },
    scheduler: { type: 'text', nullable: true },
    retryCount: { type: 'int', name: 'retry_count', default: 0 },
    lease: { type: 'int', default: 0 },
    leaseExpiresAt: { type: 'timestamptz', name: 'lease_expires_at', nullable: true },
    eventSeq: { type: 'int', name: 'event_seq', default: 0 },
    cancelRequestedAt: { type: 'timestamptz', name: 'cancel_requested_at', nullable: true },
    deadlineAt: { type: 'timestamptz', name: 'deadline_at', nullable: true },
    errorCode: { type: 'text', name: 'error_code', nullable: true },
    errorMessage: { type: 'text', name: 'error_message', nullable: true },
    errorRetryable: { type: 'boolean', name: 'error_retryable', nullable: true },
    timing: { type: 'jsonb', nullable: true },
    createdAt,
    startedAt: { type: 'timestamptz', name: 'started_at', nullable: true },
    completedAt: { type: 'timestamptz', name: 'completed_at', nullable: true },
  },
  indices: [
    { name: 'generations_created', columns: ['createdAt', 'id'] },
    { name: 'generations_status_created', columns: ['status', 'createdAt', 'id'] },
    { name: 'generations_model', columns: ['modelId'] },
    { name: 'generations_lora', columns: ['loraId'] },
    // What the reconciler looks for: leases that ran out, and deadlines that passed.
    { name: 'generations_running_lease', columns: ['leaseExpiresAt'], where: "status = 'RUNNING'" },
    { name: 'generations_pending_deadline', columns: ['deadlineAt'], where: "status = 'PENDING' AND deadline_at IS NOT NULL" },
  ],
  checks: [
    { name: 'generations_status_check', expression: `status IN ('PENDING','RUNNING','COMPLETED','FAILED','CANCELLED')` },
  ],
  foreignKeys: [
    { target: 'Model', columnNames: ['modelId'], referencedColumnNames: ['id'], onDelete: 'RESTRICT', name: 'generations_model_fk' },
    { target: 'Model', columnNames: ['loraId'], referencedColumnNames: ['id'], onDelete: 'RESTRICT', name: 'generations_lora_fk' },
  ],
});
