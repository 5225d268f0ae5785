import DataLoader from 'dataloader';
import { type DataSource, In } from 'typeorm';
import { JobAttemptEntity } from '../db/entities/job-attempt.js';
import { JobOutputEntity } from '../db/entities/job-output.js';
import { JobEntity } from '../db/entities/job.js';
import { ModelEntity } from '../db/entities/model.js';
import type { Loaders } from './context.js';

/** One query per kind of relation per request, however many rows ask for it. */
export function createLoaders(ds: DataSource): Loaders {
  return {
    model: new DataLoader(async (ids) => {
      const rows = await ds.manager.findBy(ModelEntity, { id: In([...ids]) });
      return ids.map((id) => rows.find((r) => r.id === id));
    }),
    job: new DataLoader(async (ids) => {
      const rows = await ds.manager.findBy(JobEntity, { id: In([...ids]) });
      return ids.map((id) => rows.find((r) => r.id === id));
    }),
    attempts: new DataLoader(async (jobIds) => {
      const rows = await ds.manager.find(JobAttemptEntity, { where: { jobId: In([...jobIds]) }, order: { lease: 'ASC' } });
      return jobIds.map((id) => rows.filter((r) => r.jobId === id));
    }),
    outputs: new DataLoader(async (jobIds) => {
      const rows = await ds.manager.find(JobOutputEntity, { where: { jobId: In([...jobIds]) }, order: { index: 'ASC' } });
      return jobIds.map((id) => rows.filter((r) => r.jobId === id));
    }),
  };
}
