import { EntitySchema } from 'typeorm';
import { type SigningSecret, signingSecretColumns } from './webhook-endpoint.js';

/** The secret that signs every job's own webhook deliveries: one row, made on first use. */
export interface JobWebhookSecret extends SigningSecret {
  id: number;
}

export const JobWebhookSecretEntity = new EntitySchema<JobWebhookSecret>({
  name: 'JobWebhookSecret',
  tableName: 'job_webhook_secret',
  columns: {
    id: { type: 'int', primary: true, default: 1 },
    ...signingSecretColumns,
  },
  checks: [{ name: 'job_webhook_secret_one_row', expression: 'id = 1' }],
});
