import { EntitySchema } from 'typeorm';

/** One POST of a delivery, and what came back. */
export interface WebhookAttempt {
  deliveryId: string;
  /** 1 for the first POST, 2 for the first retry, … */
  attempt: number;
  /** host:pid of the process that sent it. */
  sender: string;
  startedAt: Date;
  durationMs: number;
  /** The response's status; null when none came (timeout, refused address, connection error). */
  statusCode: number | null;
  error: string | null;
  /** The start of the response body (at most a few KiB are read). */
  responseBody: string | null;
  /** When the next attempt is due; null when none follows. */
  nextRetryAt: Date | null;
}

export const WebhookAttemptEntity = new EntitySchema<WebhookAttempt>({
  name: 'WebhookAttempt',
  tableName: 'webhook_attempts',
  columns: {
    deliveryId: { type: 'uuid', name: 'delivery_id', primary: true },
    attempt: { type: 'int', primary: true },
    sender: { type: 'text' },
    startedAt: { type: 'timestamptz', name: 'started_at' },
    durationMs: { type: 'double precision', name: 'duration_ms' },
    statusCode: { type: 'int', name: 'status_code', nullable: true },
    error: { type: 'text', nullable: true },
    responseBody: { type: 'text', name: 'response_body', nullable: true },
    nextRetryAt: { type: 'timestamptz', name: 'next_retry_at', nullable: true },
  },
  foreignKeys: [{ target: 'WebhookDelivery', columnNames: ['deliveryId'], referencedColumnNames: ['id'], onDelete: 'CASCADE', name: 'webhook_attempts_delivery_fk' }],
});
