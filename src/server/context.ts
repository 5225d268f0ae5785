import type DataLoader from 'dataloader';
import type { PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import type { Config } from '../config.js';
import type { JobAttempt } from '../db/entities/job-attempt.js';
import type { JobOutput } from '../db/entities/job-output.js';
import type { Job } from '../db/entities/job.js';
import type { JobWebhook } from '../db/entities/job-webhook.js';
import type { Model } from '../db/entities/model.js';
import type { WebhookAttempt } from '../db/entities/webhook-attempt.js';
import type { WebhookDelivery } from '../db/entities/webhook-delivery.js';
import type { EventHub } from '../events/event-hub.js';
import type { Health } from '../health/health.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import type { KindDefinition } from '../jobs/kind.js';
import type { JobPolicy } from '../jobs/queue.js';
import type { Logger } from '../log.js';
import type { Storage } from '../storage/storage.js';
import type { ApiKeys, ClientIdentity } from './clients.js';

/** What the API's resolvers work with, made once per process. */
export interface Services {
  config: Config;
  ds: DataSource;
  boss: PgBoss;
  /** Retry, expiry and heartbeat options a job of a kind is sent with. */
  jobPolicy(kind: KindDefinition): JobPolicy;
  kinds: readonly KindDefinition[];
  storage: Storage;
  hub: EventHub;
  apiKeys: ApiKeys;
  rateLimiter: RateLimiter;
  health: Health;
  log: Logger;
}

/** Batches per request, never shared between requests (or between a subscription's events). */
export interface Loaders {
  model: DataLoader<string, Model | undefined>;
  job: DataLoader<string, Job | undefined>;
  outputs: DataLoader<string, JobOutput[]>;
  attempts: DataLoader<string, JobAttempt[]>;
  jobWebhook: DataLoader<string, JobWebhook | undefined>;
  /** A job's webhook deliveries, in the order of its events. */
  webhookDeliveries: DataLoader<string, WebhookDelivery[]>;
  webhookAttempts: DataLoader<string, WebhookAttempt[]>;
}

export interface Context {
  services: Services;
  loaders: Loaders;
  client: ClientIdentity;
  /** Origin for links the API serves (signed file URLs). */
  baseUrl: string;
  requestId: string;
  log: Logger;
}
