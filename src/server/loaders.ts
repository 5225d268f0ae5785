import DataLoader from 'dataloader';
import { type DataSource, In } from 'typeorm';
import { JobAttemptEntity } from '../db/entities/job-attempt.js';
import { JobWebhookEntity } from '../db/entities/job-webhook.js';
import { JobOutputEntity } from '../db/entities/job-output.js';
import { JobEntity } from '../db/entities/job.js';
import { ModelEntity } from '../db/entities/model.js';
import { WebhookAttemptEntity } from '../db/entities/webhook-attempt.js';
import { WebhookDeliveryEntity } from '../db/entities/webhook-delivery.js';
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
    jobWebhook: new DataLoader(async (jobIds) => {
      const rows = await ds.manager.findBy(JobWebhookEntity, { jobId: In([...jobIds]) });
      return jobIds.map((id) => rows.find((r) => r.jobId === id));
    }),
    webhookDeliveries: new DataLoader(async (jobIds) => {
      const rows = await ds.manager.find(WebhookDeliveryEntity, { where: { jobId: In([...jobIds]) }, order: { eventSeq: 'ASC', createdAt: 'ASC' } });
      return jobIds.map((id) => rows.filter((r) => r.jobId === id));
    }),
    webhookAttempts: new DataLoader(async (deliveryIds) => {
      const rows = await ds.manager.find(WebhookAttemptEntity, { where: { deliveryId: In([...deliveryIds]) }, order: { attempt: 'ASC' } });
      return deliveryIds.map((id) => rows.filter((r) => r.deliveryId === id));
    }),
  };
}
