import { EntitySchema } from 'typeorm';

/** The webhook a job was submitted with (`webhook: { url, events }`). */
export interface JobWebhook {
  jobId: string;
  url: string;
  events: string[];
}

export const JobWebhookEntity = new EntitySchema<JobWebhook>({
  name: 'JobWebhook',
  tableName: 'job_webhooks',
  columns: {
    jobId: { type: 'uuid', name: 'job_id', primary: true },
    url: { type: 'text' },
    events: { type: 'text', array: true },
  },
  foreignKeys: [{ target: 'Job', columnNames: ['jobId'], referencedColumnNames: ['id'], onDelete: 'CASCADE', name: 'job_webhooks_job_fk' }],
});
