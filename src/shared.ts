import type { PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import type { Config } from './config.js';
import type { PgListener } from './events/pg-listener.js';
import type { Health } from './health/health.js';
import type { KindDefinition } from './jobs/kind.js';
import type { JobPolicy } from './jobs/queue.js';
import type { RateLimiter } from './limits/rate-limiter.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics/metrics.js';
import type { BreakerStorage } from './storage/breaker-storage.js';
import type { UrlSigner } from './storage/url-signer.js';

/** What every role shares: made once per process by startKiln, handed to the roles' parts. */
export interface Shared {
  config: Config;
  log: Logger;
  ds: DataSource;
  boss: PgBoss;
  /** Behind its circuit breaker; `storage.circuit` is its state. */
  storage: BreakerStorage;
  signer: UrlSigner;
  listener: PgListener;
  health: Health;
  metrics: Metrics;
  rateLimiter: RateLimiter;
  /** The kinds of work this Kiln runs. */
  kinds: readonly KindDefinition[];
  /** Retry, expiry and heartbeat options a job of a kind is sent with (this process's settings decide). */
  jobPolicy(kind: KindDefinition): JobPolicy;
  /** Live subscriptions, once an API serves them (for metrics). */
  subscriptions: () => number;
}
