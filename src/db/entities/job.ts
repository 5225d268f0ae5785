import { EntitySchema } from 'typeorm';
import { createdAt } from './columns.js';

export const jobStatuses = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type JobStatus = (typeof jobStatuses)[number];
export const terminalStatuses: readonly JobStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED'];

/** Where every job starts, and the steps that end one; the kinds name the steps between. */
export const QUEUED = 'QUEUED';
export const endSteps = ['COMPLETED', 'FAILED', 'CANCELLED'] as const;

/** Milliseconds spent in each part of a run; each kind fills the parts it has. */
export type Timing = Partial<Record<'modelLoadMs' | 'loraLoadMs' | 'encodeMs' | 'generateMs' | 'saveMs' | 'totalMs', number>>;

/**
 * One job of any kind (an image generation, a music generation, a training, …): its lifecycle
 * state, and the parameters its kind defined (`params`, as the kind resolved them at submit).
 */
export interface Job {
  id: string;
  /** The kind of work (`image`, …): which definition reads `params` and runs it. */
  kind: string;
  /** The pg-boss queue it waits in: its kind and the resource class it needs (e.g. `image.builtin`). */
  queue: string;
  status: JobStatus;
  /** The last event's step: QUEUED, one of the kind's steps, or COMPLETED, FAILED, CANCELLED. */
  currentStep: string;
  progress: number;
  params: Record<string, unknown>;
  /** Jobs with the same affinity reuse what a worker keeps loaded (its model and LoRA). */
  affinity: string | null;
  priority: number;
  retryCount: number;
  /** Fencing token: bumped each time a worker takes the job; writes carry the one they hold. */
  lease: number;
  leaseExpiresAt: Date | null;
  /** Per-job event counter; the last event's cursor. */
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

export const JobEntity = new EntitySchema<Job>({
  name: 'Job',
  tableName: 'jobs',
  columns: {
    id: { type: 'uuid', primary: true, generated: 'uuid' },
    kind: { type: 'text' },
    queue: { type: 'text' },
    status: { type: 'text' },
    currentStep: { type: 'text', name: 'current_step' },
    progress: { type: 'double precision', default: 0 },
    params: { type: 'jsonb' },
    affinity: { type: 'text', nullable: true },
    priority: { type: 'int', default: 0 },
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
    { name: 'jobs_created', columns: ['createdAt', 'id'] },
    { name: 'jobs_status_created', columns: ['status', 'createdAt', 'id'] },
    { name: 'jobs_kind_status_created', columns: ['kind', 'status', 'createdAt', 'id'] },
    // What workers and stats look at: the waiting jobs of each queue.
    { name: 'jobs_pending_queue', columns: ['queue', 'priority'], where: "status = 'PENDING'" },
    // What the reconciler looks for: leases that ran out, and deadlines that passed.
    { name: 'jobs_running_lease', columns: ['leaseExpiresAt'], where: "status = 'RUNNING'" },
    { name: 'jobs_pending_deadline', columns: ['deadlineAt'], where: "status = 'PENDING' AND deadline_at IS NOT NULL" },
  ],
  checks: [{ name: 'jobs_status_check', expression: `status IN ('PENDING','RUNNING','COMPLETED','FAILED','CANCELLED')` }],
});
