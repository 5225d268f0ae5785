import { EntitySchema } from 'typeorm';

/**
 * A model a job uses, in the role its kind gives it (`model`, `lora`, `base`, …): what keeps a
 * model from being deleted under a job, and what lists a model's jobs.
 */
export interface JobModel {
  jobId: string;
  role: string;
  modelId: string;
}

export const JobModelEntity = new EntitySchema<JobModel>({
  name: 'JobModel',
  tableName: 'job_models',
  columns: {
    jobId: { type: 'uuid', name: 'job_id', primary: true },
    role: { type: 'text', primary: true },
    modelId: { type: 'uuid', name: 'model_id' },
  },
  indices: [{ name: 'job_models_model', columns: ['modelId'] }],
  foreignKeys: [
    { target: 'Job', columnNames: ['jobId'], referencedColumnNames: ['id'], onDelete: 'CASCADE', name: 'job_models_job_fk' },
    { target: 'Model', columnNames: ['modelId'], referencedColumnNames: ['id'], onDelete: 'RESTRICT', name: 'job_models_model_fk' },
  ],
});
