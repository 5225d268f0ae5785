import type DataLoader from 'dataloader';
import type { PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import type { Config } from '../config.js';
import type { GenerationAttempt } from '../db/entities/generation-attempt.js';
import type { Generation } from '../db/entities/generation.js';
import type { Image } from '../db/entities/image.js';
import type { Model } from '../db/entities/model.js';
import type { EventHub } from '../events/event-hub.js';
import type { Health } from '../health/health.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import type { JobPolicy } from '../jobs/queue.js';
import type { Logger } from '../log.js';
import type { Storage } from '../storage/storage.js';
import type { ApiKeys, ClientIdentity } from './clients.js';

/** What the API's resolvers work with, made once per process. */
export interface Services {
  config: Config;
  ds: DataSource;
  boss: PgBoss;
  /** Retry, expiry and heartbeat options every job is sent with. */
  jobPolicy: JobPolicy;
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
  generation: DataLoader<string, Generation | undefined>;
  images: DataLoader<string, Image[]>;
  attempts: DataLoader<string, GenerationAttempt[]>;
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
