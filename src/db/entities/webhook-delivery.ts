import { EntitySchema } from 'typeorm';
import { createdAt } from './columns.js';

export const deliveryStatuses = ['PENDING', 'DELIVERED', 'FAILED'] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];

/**
 * One event of one job for one webhook: its `id` is the `webhook-id` header, the same on every
 * attempt. Rows are written by a trigger on `job_events`, in the transaction of the event.
 */
export interface WebhookDelivery {
  id: string;
  jobId: string;
  /** The subscription it is for; null for the job's own webhook. */
  endpointId: string | null;
  url: string;
  /** STARTED, PROGRESS, COMPLETED, FAILED or CANCELLED. */
  event: string;
  /** The job event it tells of. */
  eventSeq: number;
  eventAt: Date;
  /** PENDING until it is delivered, or given up (FAILED). */
  status: DeliveryStatus;
  /** Whether its job is on the delivery queue yet (the trigger cannot put it there itself). */
  queued: boolean;
  attempts: number;
  nextAttemptAt: Date | null;
  /** No retry is scheduled past this. */
  giveUpAt: Date | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

export const WebhookDeliveryEntity = new EntitySchema<WebhookDelivery>({
  name: 'WebhookDelivery',
  tableName: 'webhook_deliveries',
  columns: {
    id: { type: 'uuid', primary: true, generated: 'uuid' },
    jobId: { type: 'uuid', name: 'job_id' },
    endpointId: { type: 'uuid', name: 'endpoint_id', nullable: true },
    url: { type: 'text' },
    event: { type: 'text' },
    eventSeq: { type: 'int', name: 'event_seq' },
    eventAt: { type: 'timestamptz', name: 'event_at' },
    status: { type: 'text', default: 'PENDING' },
    queued: { type: 'boolean', default: false },
    attempts: { type: 'int', default: 0 },
    nextAttemptAt: { type: 'timestamptz', name: 'next_attempt_at', nullable: true },
    giveUpAt: { type: 'timestamptz', name: 'give_up_at', nullable: true },
    lastStatusCode: { type: 'int', name: 'last_status_code', nullable: true },
    lastError: { type: 'text', name: 'last_error', nullable: true },
    createdAt,
    finishedAt: { type: 'timestamptz', name: 'finished_at', nullable: true },
  },
  indices: [
    // The delivery log of a job, and the throttle's look at its last PROGRESS.
    { name: 'webhook_deliveries_job', columns: ['jobId', 'eventAt'] },
    { name: 'webhook_deliveries_endpoint', columns: ['endpointId', 'createdAt', 'id'] },
    // The outbox: rows the trigger wrote whose queue job is still to be sent.
    { name: 'webhook_deliveries_unqueued', columns: ['createdAt'], where: 'NOT queued' },
    { name: 'webhook_deliveries_finished', columns: ['finishedAt'], where: 'finished_at IS NOT NULL' },
  ],
  checks: [{ name: 'webhook_deliveries_status_check', expression: `status IN ('PENDING','DELIVERED','FAILED')` }],
  foreignKeys: [
    { target: 'Job', columnNames: ['jobId'], referencedColumnNames: ['id'], onDelete: 'CASCADE', name: 'webhook_deliveries_job_fk' },
    { target: 'WebhookEndpoint', columnNames: ['endpointId'], referencedColumnNames: ['id'], onDelete: 'CASCADE', name: 'webhook_deliveries_endpoint_fk' },
  ],
});
