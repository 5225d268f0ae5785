import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import type { CircuitBreaker, CircuitState } from '../circuit/breaker.js';
import type { Timing } from '../db/entities/job.js';
import { type QueueStats, queueStats } from '../jobs/queue-stats.js';

const CIRCUIT_STATE_VALUE: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };

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
    help: 'Job attempts this process ran, by kind and how they ended',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly stepSeconds = new Histogram({
    name: 'kiln_step_duration_seconds',
    help: 'Time spent in each part of a completed job, by kind',
    labelNames: ['kind', 'step'] as const,
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

  readonly circuitState = new Gauge({
    name: 'kiln_circuit_state',
    help: "State of each external dependency's circuit breaker in this process: 0 closed, 1 half-open, 2 open",
    labelNames: ['dependency'] as const,
    registers: [this.registry],
  });

  readonly circuitTransitions = new Counter({
    name: 'kiln_circuit_transitions_total',
    help: 'Changes of state of the circuit breakers in this process, by the state entered',
    labelNames: ['dependency', 'to'] as const,
    registers: [this.registry],
  });

  readonly circuitRejected = new Counter({
    name: 'kiln_circuit_rejected_total',
    help: 'Calls an open circuit refused at once, without reaching the dependency',
    labelNames: ['dependency'] as const,
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
    // While the database is down the queue's gauges are unknown (no samples, or NaN where a
    // gauge without labels must show one); the rest of the scrape (the process, the circuits)
    // still answers.
    const fromStats = (set: (s: QueueStats) => void, unknown: () => void) => stats().then(set, unknown);
    new Gauge({
      name: 'kiln_jobs',
      help: 'Jobs of every kind by status (all processes)',
      labelNames: ['status'] as const,
      registers: [this.registry],
      collect() {
        return fromStats(
          (s) => {
            for (const [status, n] of Object.entries({ PENDING: s.pending, RUNNING: s.running, COMPLETED: s.completed, FAILED: s.failed, CANCELLED: s.cancelled })) {
              this.set({ status }, n);
            }
          },
          () => this.reset(),
        );
      },
    });
    new Gauge({
      name: 'kiln_queue_depth',
      help: 'Jobs waiting to run',
      registers: [this.registry],
      collect() {
        return fromStats(
          (s) => this.set(s.pending),
          () => this.set(Number.NaN),
        );
      },
    });
    new Gauge({
      name: 'kiln_queue_oldest_pending_age_seconds',
      help: 'How long the oldest pending job has waited (0 when none)',
      registers: [this.registry],
      collect() {
        return fromStats(
          (s) => this.set(s.oldestPendingAgeSeconds ?? 0),
          () => this.set(Number.NaN),
        );
      },
    });
  }

  /** Follows a circuit breaker: its state, its transitions and the calls it refuses. */
  watchCircuit(circuit: CircuitBreaker): void {
    const dependency = circuit.dependency;
    this.circuitState.set({ dependency }, CIRCUIT_STATE_VALUE[circuit.state]);
    for (const to of ['open', 'half_open', 'closed'] as const) this.circuitTransitions.inc({ dependency, to }, 0);
    this.circuitRejected.inc({ dependency }, 0);
    circuit.onTransition((_, to) => {
      this.circuitState.set({ dependency }, CIRCUIT_STATE_VALUE[to]);
      this.circuitTransitions.inc({ dependency, to });
    });
    circuit.onReject(() => this.circuitRejected.inc({ dependency }));
  }

  /** Records a completed job's timing. */
  observeTiming(kind: string, timing: Timing): void {
    for (const [field, step] of STEP_FIELDS) {
      const ms = timing[field];
      if (ms !== undefined) this.stepSeconds.observe({ kind, step }, ms / 1000);
    }
  }
}
