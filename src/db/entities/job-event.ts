import { EntitySchema } from 'typeorm';
import type { JobStatus } from './job.js';

/** One step of a job, as every watcher sees it; `seq` is its cursor. */
export interface JobEvent {
  jobId: string;
  seq: number;
  attempt: number;
  step: string;
  status: JobStatus;
  stepIndex: number | null;
  stepCount: number | null;
  progress: number;
  message: string | null;
  etaSeconds: number | null;
  preview: string | null;
  /** What the kind reports beside the step (a training's loss, a download's bytes). */
  detail: Record<string, unknown> | null;
  at: Date;
}

export const JobEventEntity = new EntitySchema<JobEvent>({
  name: 'JobEvent',
  tableName: 'job_events',
  columns: {
    jobId: { type: 'uuid', name: 'job_id', primary: true },
    seq: { type: 'int', primary: true },
    attempt: { type: 'int' },
    step: { type: 'text' },
    status: { type: 'text' },
    stepIndex: { type: 'int', name: 'step_index', nullable: true },
    stepCount: { type: 'int', name: 'step_count', nullable: true },
    progress: { type: 'double precision' },
    message: { type: 'text', nullable: true },
    etaSeconds: { type: 'double precision', name: 'eta_seconds', nullable: true },
    preview: { type: 'text', nullable: true },
    detail: { type: 'jsonb', nullable: true },
    at: { type: 'timestamptz', default: () => 'now()' },
  },
  foreignKeys: [{ target: 'Job', columnNames: ['jobId'], referencedColumnNames: ['id'], onDelete: 'CASCADE', name: 'job_events_job_fk' }],
});
