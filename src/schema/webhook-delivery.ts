import type { JobWebhook } from '../db/entities/job-webhook.js';
import type { WebhookAttempt } from '../db/entities/webhook-attempt.js';
import { deliveryStatuses, type WebhookDelivery } from '../db/entities/webhook-delivery.js';
import { notFound } from '../errors.js';
import { redeliver } from '../webhooks/redeliver.js';
import { webhookEvent } from '../webhooks/webhook-option.js';
import { builder } from './builder.js';
import { isUuid } from './ids.js';
import { JobRef } from './job.js';
import { enumTypeFromZod } from './params-input.js';

export const WebhookEventEnum = enumTypeFromZod('WebhookEvent', webhookEvent);

export const WebhookDeliveryStatusEnum = builder.enumType('WebhookDeliveryStatus', {
  values: deliveryStatuses,
  description: 'PENDING until delivered (a 2xx answer) or given up (FAILED: retries ran out, a 4xx, a refused address, a disabled webhook).',
});

const WebhookAttemptRef = builder.objectRef<WebhookAttempt>('WebhookAttempt').implement({
  description: 'One POST of a delivery, and what came back.',
  fields: (t) => ({
    attempt: t.exposeInt('attempt', { description: '1 for the first POST, 2 for the first retry, …' }),
    sender: t.exposeString('sender', { description: 'host:pid of the Kiln process that sent it' }),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    durationMs: t.exposeFloat('durationMs'),
    statusCode: t.exposeInt('statusCode', { nullable: true, description: 'null when no answer came' }),
    error: t.exposeString('error', { nullable: true, description: 'Why it did not count as delivered: a timeout, a connection error, a refused address, a status.' }),
    responseBody: t.exposeString('responseBody', { nullable: true, description: 'The start of the answer (at most 4 KiB are read).' }),
    nextRetryAt: t.expose('nextRetryAt', { type: 'DateTime', nullable: true, description: 'When the retry it led to was due; null when none followed.' }),
  }),
});

export const WebhookDeliveryRef = builder.objectRef<WebhookDelivery>('WebhookDelivery').implement({
  description: 'One event of one job for one webhook, with every attempt to deliver it.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The `webhook-id` header: the same on every attempt, for receivers to drop repeats.' }),
    job: t.field({ type: JobRef, resolve: async (d, _, ctx) => (await ctx.loaders.job.load(d.jobId))! }),
    webhookId: t.exposeID('endpointId', { nullable: true, description: "The subscription it is for; null for the job's own webhook." }),
    url: t.exposeString('url'),
    event: t.field({ type: WebhookEventEnum, resolve: (d) => d.event }),
    eventCursor: t.string({ description: 'The cursor of the job event it tells of.', resolve: (d) => String(d.eventSeq) }),
    status: t.field({ type: WebhookDeliveryStatusEnum, resolve: (d) => d.status }),
    attemptCount: t.exposeInt('attempts'),
    attempts: t.field({ type: [WebhookAttemptRef], description: 'Oldest first.', resolve: (d, _, ctx) => ctx.loaders.webhookAttempts.load(d.id) }),
    nextAttemptAt: t.expose('nextAttemptAt', { type: 'DateTime', nullable: true, description: 'While PENDING: when it is (next) due.' }),
    lastStatusCode: t.exposeInt('lastStatusCode', { nullable: true }),
    lastError: t.exposeString('lastError', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
  }),
});

const JobWebhookRef = builder.objectRef<JobWebhook>('JobWebhook').implement({
  description: 'The webhook a job was submitted with.',
  fields: (t) => ({
    url: t.exposeString('url'),
    events: t.field({ type: [WebhookEventEnum], resolve: (w) => w.events }),
  }),
});

builder.interfaceFields(JobRef, (t) => ({
  webhook: t.field({ type: JobWebhookRef, nullable: true, description: 'The webhook it was submitted with.', resolve: (j, _, ctx) => ctx.loaders.jobWebhook.load(j.id) }),
  webhookDeliveries: t.field({
    type: [WebhookDeliveryRef],
    description: "Its deliveries, to its own webhook and to subscriptions, in the order of its events.",
    resolve: (j, _, ctx) => ctx.loaders.webhookDeliveries.load(j.id),
  }),
}));

builder.mutationFields((t) => ({
  redeliverWebhook: t.field({
    type: WebhookDeliveryRef,
    description: 'Sends a finished delivery again, now, with the same webhook-id, retried like a new one. CONFLICT while it is still being delivered or its webhook is disabled.',
    args: { id: t.arg.id({ required: true, description: 'The delivery (its webhook-id).' }) },
    resolve: (_, { id }, ctx) => {
      if (!isUuid(id)) throw notFound('webhook delivery', id);
      return redeliver(ctx.services.ds, ctx.services.boss, ctx.services.config.webhooks, id);
    },
  }),
}));
