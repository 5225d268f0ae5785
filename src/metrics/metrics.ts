import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import type { Timing } from '../db/entities/generation.js';
import { type QueueStats, queueStats } from '../jobs/queue-stats.js';

const STEP_FIELDS: [keyof Timing, string][] = [
  ['modelLoadMs', 'model_load'],
  ['loraLoadMs', 'lora_load'],
  ['encodeMs', 'encode_prompt'],
  ['generateMs', 'generate'],
  ['saveMs', 'save'],
  ['totalMs', 'total'],
];

/**
 * Prometheus metrics of one process, served at GET /metrics. Counters count what this process
 * did; the queue's gauges are read from Postgres at each scrape, so any process tells the truth.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly jobs = new Counter({
    name: 'kiln_jobs_total',
    help: 'Generation attempts this process ran, by how they ended',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly stepSeconds = new Histogram({
    name: 'kiln_step_duration_seconds',
    help: 'Time spent in each part of a completed generation',
    labelNames: ['step'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers: [this.registry],
  });

  readonly cacheRequests = new Counter({
    name: 'kiln_cache_requests_total',
    help: 'Loaded-session and model-file cache lookups by this process, by result',
    labelNames: ['cache', 'result'] as const,
    registers: [this.registry],
  });

  readonly sessionCacheBytes = new Gauge({
    name: 'kiln_session_cache_bytes',
    help: 'Memory the loaded models of this worker hold',
    registers: [this.registry],
  });

  readonly rateLimited = new Counter({
    name: 'kiln_rate_limited_total',
    help: 'Submissions refused by the rate limit in this process',
    registers: [this.registry],
  });

  constructor(ds: DataSource, subscriptions: () => number) {
    // The default metrics are already named process_… and nodejs_…: the prefix only adds kiln_.
    collectDefaultMetrics({ register: this.registry, prefix: 'kiln_' });
    new Gauge({
      name: 'kiln_subscriptions',
      help: 'Live GraphQL subscriptions on this process',
      registers: [this.registry],
      collect() {
        this.set(subscriptions());
      },
    });
    // prom-client collects every metric at once: the three queue gauges share one query per scrape.
    let pending: Promise<QueueStats> | undefined;
    const stats = () => {
      pending ??= queueStats(ds).finally(() => setTimeout(() => (pending = undefined), 1000).unref());
      return pending;
    };
    new Gauge({
      name: 'kiln_generations',
      help: 'Generations by status (all processes)',
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        const s = await stats();
        for (const [status, n] of Object.entries({ PENDING: s.pending, RUNNING: s.running, COMPLETED: s.completed, FAILED: s.failed, CANCELLED: s.cancelled })) {
          this.set({ status }, n);
        }
      },
    });
    new Gauge({
      name: 'kiln_queue_depth',
      help: 'Generations waiting to run',
      registers: [this.registry],
      async collect() {
        this.set((await stats()).pending);
      },
    });
    new Gauge({
      name: 'kiln_queue_oldest_pending_age_seconds',
      help: 'How long the oldest pending generation has waited (0 when none)',
      registers: [this.registry],
      async collect() {
        this.set((await stats()).oldestPendingAgeSeconds ?? 0);
      },
    });
  }

  /** Records a completed generation's timing. */
  observeTiming(timing: Timing): void {
    for (const [field, step] of STEP_FIELDS) {
      const ms = timing[field];
      if (ms !== undefined) this.stepSeconds.observe({ step }, ms / 1000);
    }
  }
}
