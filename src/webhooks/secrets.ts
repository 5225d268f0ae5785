import type { DataSource, EntityManager } from 'typeorm';
import { type JobWebhookSecret, JobWebhookSecretEntity } from '../db/entities/job-webhook-secret.js';
import { entityFromRow, queryRows } from '../db/sql.js';
import { newSecret } from './signing.js';

/** The SET clause of a rotation: a new secret, the old one kept signing for `$overlap` seconds. */
export const ROTATE = `previous_secret = secret, previous_secret_expires_at = now() + make_interval(secs => $1),
  secret = $2, secret_rotated_at = now()`;

/** The secret that signs jobs' own webhooks, made the first time it is asked for. */
export async function jobWebhookSecret(db: DataSource | EntityManager): Promise<JobWebhookSecret> {
  const manager = 'manager' in db ? db.manager : db;
  await manager.query('INSERT INTO job_webhook_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING', [newSecret()]);
  return manager.findOneByOrFail(JobWebhookSecretEntity, { id: 1 });
}

/** Replaces the job webhook secret; the old one also signs for `overlapSeconds`. */
export async function rotateJobWebhookSecret(ds: DataSource, overlapSeconds: number): Promise<JobWebhookSecret> {
  await jobWebhookSecret(ds);
  const [row] = await queryRows(ds, `UPDATE job_webhook_secret SET ${ROTATE} WHERE id = 1 RETURNING *`, [overlapSeconds, newSecret()]);
  return entityFromRow(ds, JobWebhookSecretEntity, row!);
}
