import { EntitySchema } from 'typeorm';

/**
 * A worker process as it last reported itself: what it can run and what it is doing. Rows are
 * refreshed every few seconds; one whose heartbeat stopped is a worker that is gone.
 */
export interface WorkerRow {
  /** host:pid */
  id: string;
  host: string;
  pid: number;
  kinds: string[];
  /** The queues it takes jobs from (kind and pipeline or trainer). */
  queues: string[];
  providers: string[];
  /** Models whose sessions its runners hold loaded. */
  modelsLoaded: string[];
  currentJobs: string[];
  startedAt: Date;
  heartbeatAt: Date;
}

export const WorkerEntity = new EntitySchema<WorkerRow>({
  name: 'Worker',
  tableName: 'workers',
  columns: {
    id: { type: 'text', primary: true },
    host: { type: 'text' },
    pid: { type: 'int' },
    kinds: { type: 'text', array: true },
    queues: { type: 'text', array: true },
    providers: { type: 'text', array: true },
    modelsLoaded: { type: 'uuid', array: true, name: 'models_loaded', default: () => "'{}'" },
    currentJobs: { type: 'uuid', array: true, name: 'current_jobs', default: () => "'{}'" },
    startedAt: { type: 'timestamptz', name: 'started_at', default: () => 'now()' },
    heartbeatAt: { type: 'timestamptz', name: 'heartbeat_at', default: () => 'now()' },
  },
  indices: [{ name: 'workers_heartbeat', columns: ['heartbeatAt'] }],
});
