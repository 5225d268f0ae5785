import type { JobWithMetadata } from 'pg-boss';
import { Channel } from '../events/channels.js';
import type { PgListener } from '../events/pg-listener.js';
import { GENERATE_QUEUE } from '../jobs/queue.js';
import { type JobDeps, runJob, type RunSlot, Stop } from './run-job.js';
import { Runner } from './runner.js';
import type { ProviderCheck } from '../pipelines/onnx/provider-check.js';
import type { RunnerSettings } from './runner-protocol.js';

/** What one fetch gave: the next job (none when the queue is empty) or why it failed. */
type Fetched = { job?: JobWithMetadata<unknown> } | { err: unknown };

export interface WorkerSettings {
  concurrency: number;
  /** How long an idle slot waits for a wake-up before it looks for jobs anyway. */
  pollMs: number;
  /** False while a dependency every job needs (storage) is known to be down: no job is taken then. */
  dependenciesUp: () => Promise<boolean>;
  runner: RunnerSettings;
}

/**
 * Kiln's own fetch → run → settle → fetch loop over pg-boss, one per concurrency slot. A slot
 * fetches its next job while the current one is being settled (pg-boss's work() would wait out
 * its polling interval), so that an accelerator with a backlog is not left idle between jobs;
 * an idle slot sleeps until a job is queued (NOTIFY) or its poll comes round.
 */
export class Worker {
  private runners: Runner[] = [];
  private loops: Promise<void>[] = [];
  private stopping = false;
  /** Aborted when the shutdown grace is over: jobs still in hand go back to the queue. */
  private handBack = new AbortController();
  private wakers = new Set<() => void>();
  private unlisten: (() => void)[] = [];
  /** Generations this process is running, and what stops each. */
  private running = new Map<string, AbortController>();

  constructor(
    private readonly deps: JobDeps,
    private readonly listener: PgListener,
    private readonly settings: WorkerSettings,
  ) {}

  /** Starts the runner processes (checking the execution providers) and the fetch loops. */
  async start(): Promise<void> {
    const wakeAll = () => this.wakers.forEach((w) => w());
    this.unlisten.push(
      this.listener.on(Channel.jobs, wakeAll),
      this.listener.onReconnect(wakeAll),
      this.listener.on(Channel.cancel, (id) => this.running.get(id)?.abort(Stop.cancelled())),
    );
    for (let i = 0; i < this.settings.concurrency; i++) {
      this.runners.push(new Runner(this.settings.runner, this.deps.log.child({ slot: i })));
    }
    await Promise.all(this.runners.map((r) => r.start()));
    for (const runner of this.runners) this.loops.push(this.loop(runner));
  }

  /** Execution providers in use, as the first runner found them at start. */
  get providers(): ProviderCheck | undefined {
    return this.runners[0]?.providers;
  }

  /**
   * Stops fetching and gives the jobs in hand `graceMs` to finish; those still running then are
   * stopped and handed back to the queue (a retryable failure another worker picks up).
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.wakers.forEach((w) => w());
    const loops = Promise.all(this.loops);
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
    if ((await Promise.race([loops, grace])) === 'late') {
      this.deps.log.warn({ generations: [...this.running.keys()] }, 'shutdown grace over: handing running jobs back to the queue');
      this.handBack.abort();
      await loops;
    }
    clearTimeout(timer);
    this.unlisten.forEach((u) => u());
    await Promise.all(this.runners.map((r) => r.stop()));
  }

  private async loop(runner: Runner) {
    let next: Promise<Fetched> | undefined;
    const slot: RunSlot = {
      runner,
      running: this.running,
      handBack: this.handBack.signal,
      settling: () => {
        if (!this.stopping) next ??= this.fetch();
      },
    };
    let failures = 0;
    // A job fetched while the last one settled is in hand: it runs even if a stop came meanwhile.
    while (!this.stopping || next) {
      const fetched = await (next ?? this.fetch());
      next = undefined;
      if ('err' in fetched) {
        failures++;
        this.deps.log.error({ err: fetched.err }, 'could not fetch jobs');
        await this.sleep(Math.min(30_000, 500 * 2 ** failures));
        continue;
      }
      failures = 0;
      if (!fetched.job) {
        await this.sleep(this.settings.pollMs);
        continue;
      }
      try {
        await runJob(this.deps, slot, fetched.job);
      } catch (err) {
        // The job stays claimed; pg-boss hands it on when its heartbeat stops.
        this.deps.log.error({ err, jobId: fetched.job.id }, 'job could not be settled');
      }
    }
  }

  private async fetch(): Promise<Fetched> {
    // Jobs stay queued while storage's circuit is open, instead of each failing an attempt on it.
    if (!(await this.settings.dependenciesUp())) return {};
    return this.deps.boss.fetch<unknown>(GENERATE_QUEUE, { batchSize: 1, includeMetadata: true, priority: true }).then(
      ([job]) => ({ job }),
      (err: unknown) => ({ err }),
    );
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }
}
