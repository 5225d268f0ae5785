import { z } from 'zod';
import type { SigningSecret, WebhookEndpoint } from '../db/entities/webhook-endpoint.js';
import { WebhookEndpointEntity } from '../db/entities/webhook-endpoint.js';
import { WebhookDeliveryEntity } from '../db/entities/webhook-delivery.js';
import { badInput, notFound } from '../errors.js';
import { createEndpoint, deleteEndpoint, enableEndpoint, rotateEndpointSecret } from '../webhooks/endpoints.js';
import { jobWebhookSecret, rotateJobWebhookSecret } from '../webhooks/secrets.js';
import { TERMINAL_EVENTS, type WebhookEvent, webhookEvents, webhookUrl } from '../webhooks/webhook-option.js';
import { builder } from './builder.js';
import { isUuid } from './ids.js';
import { applyKeyset, keysetConnection } from './pagination.js';
import { WebhookDeliveryRef, WebhookDeliveryStatusEnum, WebhookEventEnum } from './webhook-delivery.js';

const stillSigning = (s: SigningSecret) => (s.previousSecretExpiresAt && s.previousSecretExpiresAt > new Date() ? s.previousSecretExpiresAt : null);

export const WebhookRef = builder.objectRef<WebhookEndpoint>('Webhook').implement({
  description: "A subscription to jobs' events (of every kind, or of some), POSTed to one URL and signed with its own secret.",
  fields: (t) => ({
    id: t.exposeID('id'),
    url: t.exposeString('url'),
    events: t.field({ type: [WebhookEventEnum], resolve: (w) => w.events }),
    kinds: t.stringList({ nullable: true, description: 'The kinds of job it hears; null: every kind.', resolve: (w) => w.kinds }),
    enabled: t.boolean({ resolve: (w) => w.disabledAt === null }),
    disabledAt: t.expose('disabledAt', { type: 'DateTime', nullable: true }),
    disabledReason: t.exposeString('disabledReason', { nullable: true, description: 'Why it was disabled: its failed attempts in a row and the last one.' }),
    failureStreak: t.exposeInt('failureStreak', { description: 'Failed attempts since the last delivered one; KILN_WEBHOOK_DISABLE_AFTER of them disable it.' }),
    secretRotatedAt: t.expose('secretRotatedAt', { type: 'DateTime', nullable: true }),
    previousSecretExpiresAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'Until then, deliveries carry a signature with the secret it had before its last rotation too.',
      resolve: stillSigning,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    deliveries: t.connection(
      {
        type: WebhookDeliveryRef,
        description: 'Its delivery log, newest first.',
        args: { status: t.arg({ type: WebhookDeliveryStatusEnum, required: false }) },
        resolve: (w, args, ctx) =>
          keysetConnection(args, (page) => {
            const qb = ctx.services.ds.manager.createQueryBuilder(WebhookDeliveryEntity, 'd').where('d.endpointId = :id', { id: w.id });
            if (args.status) qb.andWhere('d.status = :status', { status: args.status });
            return applyKeyset(qb, page).getMany();
          }),
      },
      { name: 'WebhookDeliveryConnection' },
      { name: 'WebhookDeliveryEdge' },
    ),
  }),
});

const WebhookWithSecretRef = builder.objectRef<{ endpoint: WebhookEndpoint; secret: string }>('WebhookWithSecret').implement({
  fields: (t) => ({
    webhook: t.field({ type: WebhookRef, resolve: (r) => r.endpoint }),
    secret: t.exposeString('secret', { description: 'whsec_…: shown this once; keep it to verify signatures.' }),
  }),
});

const JobWebhookSecretRef = builder.objectRef<SigningSecret>('JobWebhookSecret').implement({
  description: "The secret that signs jobs' own webhooks (`webhook` in a job's input).",
  fields: (t) => ({
    secret: t.exposeString('secret', { description: 'whsec_…' }),
    rotatedAt: t.expose('secretRotatedAt', { type: 'DateTime', nullable: true }),
    previousSecretExpiresAt: t.field({ type: 'DateTime', nullable: true, description: 'Until then the previous secret signs too.', resolve: stillSigning }),
  }),
});

const endpointId = (id: string) => {
  if (!isUuid(id)) throw notFound('webhook', id);
  return id;
};

builder.queryFields((t) => ({
  webhooks: t.field({
    type: [WebhookRef],
    description: 'Every subscription, oldest first.',
    resolve: (_, __, ctx) => ctx.services.ds.manager.find(WebhookEndpointEntity, { order: { createdAt: 'ASC', id: 'ASC' } }),
  }),
  webhook: t.field({
    type: WebhookRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_, { id }, ctx) => (isUuid(id) ? ctx.services.ds.manager.findOneBy(WebhookEndpointEntity, { id }) : null),
  }),
  jobWebhookSecret: t.field({
    type: JobWebhookSecretRef,
    description: "The secret that signs jobs' own webhooks (made on first use).",
    resolve: (_, __, ctx) => jobWebhookSecret(ctx.services.ds),
  }),
}));

builder.mutationFields((t) => ({
  createWebhook: t.field({
    type: WebhookWithSecretRef,
    description: 'Subscribes a URL to the events of every job (or of some kinds). Its secret is returned this once.',
    args: {
      url: t.arg.string({ required: true, validate: webhookUrl, description: 'http(s); delivery-time addresses must be public unless KILN_WEBHOOK_ALLOW names them' }),
      events: t.arg({ type: [WebhookEventEnum], required: true, defaultValue: [...TERMINAL_EVENTS], validate: webhookEvents }),
      kinds: t.arg.stringList({ required: false, validate: z.array(z.string()).min(1, 'must name at least one kind').nullish(), description: 'Kinds of job it hears (e.g. "image"); omitted: every kind.' }),
    },
    resolve: (_, { url, events, kinds }, ctx) => {
      const known = ctx.services.kinds.map((k) => k.name);
      const unknown = kinds?.find((k) => !known.includes(k));
      if (unknown !== undefined) throw badInput('kinds', `names no kind "${unknown}" (Kiln runs ${known.join(', ')})`);
      return createEndpoint(ctx.services.ds, { url, events: events as WebhookEvent[], kinds: kinds ?? null });
    },
  }),
  deleteWebhook: t.id({
    description: 'Removes a subscription with its delivery log; its deliveries not yet sent are dropped.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_, { id }, ctx) => {
      await deleteEndpoint(ctx.services.ds, endpointId(id));
      return id;
    },
  }),
  rotateWebhookSecret: t.field({
    type: WebhookWithSecretRef,
    description: 'Gives a subscription a new secret (returned this once). Deliveries carry signatures with both for KILN_WEBHOOK_SECRET_OVERLAP_H hours.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => rotateEndpointSecret(ctx.services.ds, endpointId(id), ctx.services.config.webhooks.secretOverlapSeconds),
  }),
  enableWebhook: t.field({
    type: WebhookRef,
    description: 'Turns a disabled subscription back on (its failure streak forgotten); redeliver what it missed with redeliverWebhook.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => enableEndpoint(ctx.services.ds, endpointId(id)),
  }),
  rotateJobWebhookSecret: t.field({
    type: JobWebhookSecretRef,
    description: "Replaces the secret of jobs' own webhooks. Deliveries carry signatures with both for KILN_WEBHOOK_SECRET_OVERLAP_H hours.",
    resolve: (_, __, ctx) => rotateJobWebhookSecret(ctx.services.ds, ctx.services.config.webhooks.secretOverlapSeconds),
  }),
}));
