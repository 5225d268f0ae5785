import { EntitySchema } from 'typeorm';

/** One run of a job by one worker, and how it ended. */
export interface JobAttempt {
  jobId: string;
  /** The lease the worker held: unique per run. */
  lease: number;
  /** 1 for the first run, 2 for the first retry, … */
  attempt: number;
  worker: string;
  startedAt: Date;
  endedAt: Date | null;
  /** COMPLETED, RETRY, FAILED, CANCELLED or WORKER_LOST; null while it runs. */
  outcome: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  errorRetryable: boolean | null;
}

export const JobAttemptEntity = new EntitySchema<JobAttempt>({
  name: 'JobAttempt',
  tableName: 'job_attempts',
  columns: {
    jobId: { type: 'uuid', name: 'job_id', primary: true },
    lease: { type: 'int', primary: true },
    attempt: { type: 'int' },
    worker: { type: 'text' },
    startedAt: { type: 'timestamptz', name: 'started_at', default: () => 'now()' },
    endedAt: { type: 'timestamptz', name: 'ended_at', nullable: true },
    outcome: { type: 'text', nullable: true },
    errorCode: { type: 'text', name: 'error_code', nullable: true },
    errorMessage: { type: 'text', name: 'error_message', nullable: true },
    errorRetryable: { type: 'boolean', name: 'error_retryable', nullable: true },
  },
  foreignKeys: [{ target: 'Job', columnNames: ['jobId'], referencedColumnNames: ['id'], onDelete: 'CASCADE', name: 'job_attempts_job_fk' }],
});
