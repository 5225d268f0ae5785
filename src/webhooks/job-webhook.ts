import type { EntityManager } from 'typeorm';
import type { Job } from '../db/entities/job.js';
import type { JobOptions } from '../jobs/job-options.js';

/** Records the webhook a job was submitted with, in the submitting transaction (submit's `onQueued`). */
export async function recordJobWebhook(em: EntityManager, job: Job, options: JobOptions): Promise<void> {
  if (!options.webhook) return;
  await em.query('INSERT INTO job_webhooks (job_id, url, events) VALUES ($1, $2, $3)', [job.id, options.webhook.url, [...new Set(options.webhook.events)]]);
}
