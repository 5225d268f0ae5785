import { KilnError } from '../errors.js';

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface BreakerSettings {
  /** Failures in a row that open the circuit (KILN_BREAKER_FAILURES). */
  failureThreshold: number;
  /** How long it stays open before one call may probe the dependency (KILN_BREAKER_OPEN_S). */
  openMs: number;
}

export interface BreakerOptions extends BreakerSettings {
  /** Whether an error means the dependency is down (a timeout, a refused connection, a 5xx), not that the call was wrong. */
  isOutage(err: unknown): boolean;
  /** Milliseconds since the epoch; tests move it instead of waiting. */
  now?: () => number;
}

/** What `/health` and the metrics show of one circuit. */
export interface CircuitSnapshot {
  dependency: string;
  state: CircuitState;
  consecutiveFailures: number;
  /** The last failure that counted, as the dependency reported it (for operators, not clients). */
  lastFailure?: string;
  openedAt?: string;
  /** When an open circuit lets the next probe through. */
  probeAt?: string;
}

/**
 * A dependency that is down, or whose circuit is open: UNAVAILABLE for clients (HTTP 503 with
 * Retry-After at the edge), a retryable failure for jobs. Its message names the dependency
 * only; what went wrong is in `cause` and the logs.
 */
export class DependencyUnavailable extends KilnError {
  constructor(
    readonly dependency: string,
    retryAfterSeconds: number,
    options?: { cause?: unknown },
  ) {
    super('UNAVAILABLE', `${dependency} is unavailable; try again in ${retryAfterSeconds} s`, { dependency, retryAfterSeconds });
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/**
 * A circuit breaker for one external dependency. Closed, calls go through and outages are
 * counted; `failureThreshold` in a row open it. Open, calls fail at once with
 * DependencyUnavailable, sparing the dependency and the caller the wait. After `openMs` it is
 * half-open: one call goes through as a probe (the others still fail fast); its success closes
 * the circuit, its failure opens it for another `openMs`. Errors that are not outages (a
 * missing object, a refused request) show that the dependency answers: they count as success.
 */
export class CircuitBreaker {
  private current: CircuitState = 'closed';
  private failures = 0;
  private lastFailure: string | undefined;
  private openedAt = 0;
  private probing = false;
  private readonly listeners = new Set<(from: CircuitState, to: CircuitState) => void>();
  private readonly rejectListeners = new Set<() => void>();
  private readonly now: () => number;

  constructor(
    readonly dependency: string,
    private readonly options: BreakerOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  get state(): CircuitState {
    return this.current;
  }

  /** Runs `call` unless the circuit is open; an outage it meets is thrown as DependencyUnavailable. */
  async call<T>(call: () => Promise<T>): Promise<T> {
    const probe = this.admit();
    let result: T;
    try {
      result = await call();
    } catch (err) {
      if (probe) this.probing = false;
      if (!this.options.isOutage(err)) {
        this.succeeded();
        throw err;
      }
      this.failed(err);
      throw new DependencyUnavailable(this.dependency, this.retryAfterSeconds(), { cause: err });
    }
    if (probe) this.probing = false;
    this.succeeded();
    return result;
  }

  /** Counts an outage met after a call returned (a stream that breaks while it is read). */
  failed(err: unknown): void {
    if (!this.options.isOutage(err)) return;
    this.failures++;
    this.lastFailure = err instanceof Error ? err.message || err.name : String(err);
    if (this.current === 'half_open' || (this.current === 'closed' && this.failures >= this.options.failureThreshold)) {
      this.openedAt = this.now();
      this.move('open');
    }
  }

  snapshot(): CircuitSnapshot {
    return {
      dependency: this.dependency,
      state: this.current,
      consecutiveFailures: this.failures,
      ...(this.lastFailure ? { lastFailure: this.lastFailure } : {}),
      ...(this.current === 'closed' ? {} : { openedAt: new Date(this.openedAt).toISOString(), probeAt: new Date(this.openedAt + this.options.openMs).toISOString() }),
    };
  }

  /** Called on every change of state; returns the unsubscribe function. */
  onTransition(listener: (from: CircuitState, to: CircuitState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called for every call refused without reaching the dependency. */
  onReject(listener: () => void): () => void {
    this.rejectListeners.add(listener);
    return () => this.rejectListeners.delete(listener);
  }

  /** Lets the call through (true when it is the half-open probe) or throws DependencyUnavailable. */
  private admit(): boolean {
    if (this.current === 'open' && this.now() - this.openedAt >= this.options.openMs) this.move('half_open');
    if (this.current === 'closed') return false;
    if (this.current === 'half_open' && !this.probing) {
      this.probing = true;
      return true;
    }
    this.rejectListeners.forEach((l) => l());
    throw new DependencyUnavailable(this.dependency, this.retryAfterSeconds());
  }

  private succeeded() {
    this.failures = 0;
    if (this.current !== 'closed') this.move('closed');
  }

  /** Whole seconds until the next probe may go (at least 1); a few while the circuit is still closed. */
  private retryAfterSeconds(): number {
    const left = this.current === 'closed' ? Math.min(this.options.openMs, 5000) : this.openedAt + this.options.openMs - this.now();
    return Math.max(1, Math.ceil(left / 1000));
  }

  private move(to: CircuitState) {
    const from = this.current;
    this.current = to;
    this.listeners.forEach((l) => l(from, to));
  }
}
