import type { JobWithMetadata } from 'pg-boss';
import { Channel } from '../events/channels.js';
import type { PgListener } from '../events/pg-listener.js';
import { GENERATE_QUEUE } from '../jobs/queue.js';
import { type JobDeps, runJob, Stop } from './run-job.js';
import { Runner } from './runner.js';
import type { ProviderCheck } from '../pipelines/onnx/provider-check.js';
import type { RunnerSettings } from './runner-protocol.js';

export interface WorkerSettings {
  concurrency: number;
  /** How long an idle slot waits for a wake-up before it looks for jobs anyway. */
  pollMs: number;
  runner: RunnerSettings;
}

/**
 * Kiln's own fetch → run → settle → fetch loop over pg-boss, one per concurrency slot. A slot
 * that finishes a job fetches the next one at once (pg-boss's work() would wait out its polling
 * interval); an idle one sleeps until a job is queued (NOTIFY) or its poll comes round.
 */
export class Worker {
  private runners: Runner[] = [];
  private loops: Promise<void>[] = [];
  private stopping = false;
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
      for (const stop of this.running.values()) stop.abort(Stop.shutdown());
      await loops;
    }
    clearTimeout(timer);
    this.unlisten.forEach((u) => u());
    await Promise.all(this.runners.map((r) => r.stop()));
  }

  private async loop(runner: Runner) {
    let failures = 0;
    while (!this.stopping) {
      let job: JobWithMetadata<unknown> | undefined;
      try {
        [job] = await this.deps.boss.fetch<unknown>(GENERATE_QUEUE, { batchSize: 1, includeMetadata: true, priority: true });
        failures = 0;
      } catch (err) {
        failures++;
        this.deps.log.error({ err }, 'could not fetch jobs');
        await this.sleep(Math.min(30_000, 500 * 2 ** failures));
        continue;
      }
      if (!job) {
        await this.sleep(this.settings.pollMs);
        continue;
      }
      try {
        await runJob(this.deps, runner, job, this.running);
      } catch (err) {
        // The job stays claimed; pg-boss hands it on when its heartbeat stops.
        this.deps.log.error({ err, jobId: job.id }, 'job could not be settled');
      }
    }
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
