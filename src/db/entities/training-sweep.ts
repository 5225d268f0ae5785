import { EntitySchema } from 'typeorm';

/** A finished training whose files left behind (checkpoints; a failed one's adapter) were removed after the retention period. */
export interface TrainingSweep {
  jobId: string;
  sweptAt: Date;
}

export const TrainingSweepEntity = new EntitySchema<TrainingSweep>({
  name: 'TrainingSweep',
  tableName: 'training_sweeps',
  columns: {
    jobId: { type: 'uuid', name: 'job_id', primary: true },
    sweptAt: { type: 'timestamptz', name: 'swept_at', default: () => 'now()' },
  },
  foreignKeys: [{ target: 'Job', columnNames: ['jobId'], referencedColumnNames: ['id'], onDelete: 'CASCADE', name: 'training_sweeps_job_fk' }],
});
