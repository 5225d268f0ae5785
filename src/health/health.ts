import fs from 'node:fs/promises';
import type { DataSource } from 'typeorm';
import { type CircuitBreaker, DependencyUnavailable } from '../circuit/breaker.js';
import type { PgListener } from '../events/pg-listener.js';
import { queueStats } from '../jobs/queue-stats.js';
import type { ProviderCheck } from '../pipelines/onnx/provider-check.js';
import type { Storage } from '../storage/storage.js';

export type Status = 'healthy' | 'degraded' | 'unhealthy';

export interface Check {
  status: Status;
  message: string;
  details?: Record<string, unknown>;
}

export interface HealthReport {
  status: Status;
  version: string;
  role: string;
  uptimeSeconds: number;
  checks: Record<string, Check>;
}

export interface HealthDeps {
  ds: DataSource;
  storage: Storage;
  /** The circuit breaker in front of storage, whose state the storage check reports. */
  storageCircuit?: CircuitBreaker;
  listener: PgListener;
  version: string;
  role: string;
  /** Folders whose disk matters here (data, model cache). */
  disks: string[];
  minFreeDiskBytes: number;
  queueStallSeconds: number;
  /** A worker's execution providers as found at start; undefined for an API-only process. */
  providers?: () => ProviderCheck | undefined;
  requestedProviders?: string[];
}

const CHECK_TIMEOUT_MS = 3000;
const rank: Record<Status, number> = { healthy: 0, degraded: 1, unhealthy: 2 };

/** What `/health` and `Query.health` report: each dependency's state, and the worst of them. */
export class Health {
  private readonly startedAt = Date.now();

  constructor(private readonly deps: HealthDeps) {}

  async report(): Promise<HealthReport> {
    const checks: Record<string, () => Promise<Check>> = {
      database: () => this.database(),
      queue: () => this.queue(),
      storage: () => this.storage(),
      disk: () => this.disk(),
      ...(this.deps.providers ? { accelerator: async () => this.accelerator() } : {}),
    };
    const results = Object.fromEntries(
      await Promise.all(Object.entries(checks).map(async ([name, run]) => [name, await withTimeout(run(), name)] as const)),
    );
    const status = Object.values(results).reduce<Status>((worst, c) => (rank[c.status] > rank[worst] ? c.status : worst), 'healthy');
    return {
      status,
      version: this.deps.version,
      role: this.deps.role,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 100) / 10,
      checks: results,
    };
  }

  /** Ready to serve: the database answers and every migration has been applied. */
  async ready(): Promise<{ ready: boolean; reason?: string }> {
    const db = await withTimeout(this.database(), 'database');
    return db.status === 'unhealthy' ? { ready: false, reason: db.message } : { ready: true };
  }

  private async database(): Promise<Check> {
    const started = performance.now();
    try {
      await this.deps.ds.query('SELECT 1');
      const pending = await this.deps.ds.showMigrations();
      const details = { latencyMs: round(performance.now() - started), listening: this.deps.listener.connected };
      if (pending) return { status: 'unhealthy', message: 'migrations are pending', details };
      if (!this.deps.listener.connected) return { status: 'degraded', message: 'the LISTEN connection is down: live events wait for it', details };
      return { status: 'healthy', message: 'reachable, migrations applied', details };
    } catch (err) {
      return { status: 'unhealthy', message: `unreachable: ${(err as Error).message}` };
    }
  }

  private async queue(): Promise<Check> {
    try {
      const stats = await queueStats(this.deps.ds);
      const details = { pending: stats.pending, running: stats.running, oldestPendingAgeSeconds: stats.oldestPendingAgeSeconds, blocked: stats.blocked };
      if (stats.blocked.length) {
        const b = stats.blocked[0]!;
        const more = stats.blocked.length > 1 ? ` (and ${stats.blocked.length - 1} more queue(s))` : '';
        return { status: 'degraded', message: `${b.pending} ${b.queue} job(s) wait: ${b.reason}${more}`, details };
      }
      if ((stats.oldestPendingAgeSeconds ?? 0) > this.deps.queueStallSeconds) {
        return { status: 'degraded', message: `the oldest pending job has waited over ${this.deps.queueStallSeconds} s: are workers running?`, details };
      }
      return { status: 'healthy', message: `${stats.pending} pending, ${stats.running} running`, details };
    } catch (err) {
      return { status: 'unhealthy', message: `cannot read the queue: ${(err as Error).message}` };
    }
  }

  /** A ping through the circuit breaker: while the circuit is open it fails at once, and when a probe is due it is the probe. */
  private async storage(): Promise<Check> {
    const details = () => {
      const circuit = this.deps.storageCircuit?.snapshot();
      return { kind: this.deps.storage.kind, ...(circuit ? { circuit } : {}) };
    };
    try {
      await this.deps.storage.ping();
      return { status: 'healthy', message: 'reachable', details: details() };
    } catch (err) {
      const d = details();
      if (d.circuit && d.circuit.state !== 'closed') {
        const { consecutiveFailures, lastFailure, probeAt } = d.circuit;
        const message = `circuit ${d.circuit.state.replace('_', '-')} after ${consecutiveFailures} failures in a row (last: ${lastFailure}): calls fail at once; next probe at ${probeAt}`;
        return { status: 'unhealthy', message, details: d };
      }
      const cause = err instanceof DependencyUnavailable && err.cause instanceof Error ? err.cause : (err as Error);
      return { status: 'unhealthy', message: `unreachable: ${cause.message}`, details: d };
    }
  }

  private async disk(): Promise<Check> {
    const paths = await Promise.all(
      this.deps.disks.map(async (path) => {
        const s = await fs.statfs(path).catch(() => undefined);
        return { path, freeBytes: s ? s.bavail * s.bsize : null, totalBytes: s ? s.blocks * s.bsize : null };
      }),
    );
    const floor = this.deps.minFreeDiskBytes;
    const full = paths.filter((p) => p.freeBytes !== null && p.freeBytes < Math.min(floor, 256 * 1024 * 1024));
    const low = paths.filter((p) => p.freeBytes !== null && p.freeBytes < floor);
    if (full.length) return { status: 'unhealthy', message: `almost no space left at ${full.map((p) => p.path).join(', ')}`, details: { paths } };
    if (low.length) return { status: 'degraded', message: `free space below KILN_MIN_FREE_DISK_GB at ${low.map((p) => p.path).join(', ')}`, details: { paths } };
    return { status: 'healthy', message: 'enough free space', details: { paths } };
  }

  private accelerator(): Check {
    const found = this.deps.providers?.();
    if (!found) return { status: 'degraded', message: 'the inference runner has not started', details: { requested: this.deps.requestedProviders } };
    const details = { requested: this.deps.requestedProviders, usable: found.usable, refused: found.refused };
    if (found.refused.length) {
      return { status: 'degraded', message: `running on ${found.usable.join(', ')}: ${found.refused.map((r) => r.name).join(', ')} not available`, details };
    }
    return { status: 'healthy', message: `running on ${found.usable.join(', ')}`, details };
  }
}

async function withTimeout(check: Promise<Check>, name: string): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Check>((resolve) => {
    timer = setTimeout(() => resolve({ status: 'unhealthy', message: `${name} did not answer within ${CHECK_TIMEOUT_MS} ms` }), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([check, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;
