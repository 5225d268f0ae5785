import os from 'node:os';
import type { JobWithMetadata } from 'pg-boss';
import { retriedTransaction } from '../db/retried-transaction.js';
import { Channel } from '../events/channels.js';
import type { PgListener } from '../events/pg-listener.js';
import { affinityOf } from '../jobs/affinity.js';
import { removeLostFiles } from '../jobs/lost-files.js';
import { inTransaction } from '../jobs/queue.js';
import { type Attempt, type LostRunsHandler, WORKER_ID } from '../jobs/attempt.js';
import type { WorkerCapabilities } from '../jobs/kind.js';
import { removeWorker, reportWorker, WORKER_REPORT_MS } from '../jobs/workers.js';
import type { ProviderCheck } from '../pipelines/onnx/provider-check.js';
import { type JobDeps, runJob, type RunSlot, Stop, type Taken, takeJob } from './run-job.js';
import { Runner } from './runner.js';
import type { RunnerSettings } from './runner-protocol.js';

/** What one fetch gave: the next job, taken (none when the queues are empty), or why it failed. */
type Fetched = { job?: JobWithMetadata<unknown>; attempt?: Attempt } | { err: unknown };

/** Where to look for the next job (see Worker.plan). */
interface Plan {
  queues: string[];
  skip: string[];
  top: number;
}

/**
 * How long a plan is reused while a backlog drains: a plan is a query over the waiting jobs, and
 * with a backlog most fetches would plan the same again. A job queued since (NOTIFY) or a queue
 * found empty discards it at once; the age limit bounds how late a job passed over for affinity
 * (the window is in seconds) or a retry coming due changes the order.
 */
const PLAN_REUSE_MS = 1000;

export interface WorkerSettings {
  concurrency: number;
  /** How long an idle slot waits for a wake-up before it looks for jobs anyway. */
  pollMs: number;
  /** False while a dependency every job needs (storage) is known to be down: no job is taken then. */
  dependenciesUp: () => Promise<boolean>;
  runner: RunnerSettings;
  /** The kinds of job it takes (its KILN_WORKER_KINDS). */
  kinds: string[];
  /**
   * How long a job may wait for a worker that has its model loaded while other workers take
   * jobs whose model they have; 0 turns affinity off.
   */
  affinityWaitSeconds: number;
}

/**
 * Kiln's own fetch → run → fetch loop over pg-boss, one per concurrency slot, over the queues of
 * the kinds and pipelines this worker can run. A slot fetches and starts its next job while the
 * last one's outcome is being committed (pg-boss's work() would wait out its polling interval),
 * so an accelerator with a backlog is not left idle between jobs; an idle slot sleeps until a
 * job is queued (NOTIFY) or its poll comes round. A slot whose runner has a model loaded takes that
 * model's jobs first, within the affinity window. The worker reports itself (what it can run,
 * what it runs, what it has loaded) to the `workers` table every few seconds.
 */
export class Worker {
  private runners: Runner[] = [];
  private loops: Promise<void>[] = [];
  private stopping = false;
  /** Aborted when the shutdown grace is over: jobs still in hand go back to the queue. */
  private handBack = new AbortController();
  private wakers = new Set<() => void>();
  private unlisten: (() => void)[] = [];
  /** Jobs this process is running, and what stops each. */
  private running = new Map<string, AbortController>();
  /** The models behind each affinity this worker has run, to report what its runners hold. */
  private modelsByAffinity = new Map<string, string[]>();
  private reporter: NodeJS.Timeout | undefined;
  /** The queues it takes jobs from, known once the runners have checked the providers. */
  queues: string[] = [];
  /** Recent plans, by the affinities of the slot that asked. */
  private plans = new Map<string, { plan: Plan; at: number }>();

  private readonly removeLostFiles: LostRunsHandler;

  constructor(
    private readonly deps: JobDeps,
    private readonly listener: PgListener,
    private readonly settings: WorkerSettings,
  ) {
    this.removeLostFiles = removeLostFiles(deps.storage, deps.log);
  }

  /** Starts the runner processes (checking the execution providers), then the fetch loops. */
  async start(capabilitiesFor: (providers: string[]) => WorkerCapabilities): Promise<void> {
    for (let i = 0; i < this.settings.concurrency; i++) {
      this.runners.push(new Runner(this.settings.runner, this.deps.log.child({ slot: i })));
    }
    try {
      await Promise.all(this.runners.map((r) => r.start()));
    } catch (err) {
      await Promise.all(this.runners.map((r) => r.stop()));
      throw err;
    }
    const capabilities = capabilitiesFor(this.providers?.usable ?? ['cpu']);
    this.queues = this.deps.kinds.filter((k) => this.settings.kinds.includes(k.name)).flatMap((k) => k.servedQueues(capabilities));
    const wakeAll = () => {
      this.plans.clear();
      this.wakers.forEach((w) => w());
    };
    this.unlisten.push(
      this.listener.on(Channel.jobs, wakeAll),
      this.listener.onReconnect(wakeAll),
      this.listener.on(Channel.cancel, (id) => this.running.get(id)?.abort(Stop.cancelled())),
    );
    await this.report();
    this.reporter = setInterval(() => void this.report(), WORKER_REPORT_MS).unref();
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
      this.deps.log.warn({ jobs: [...this.running.keys()] }, 'shutdown grace over: handing running jobs back to the queue');
      this.handBack.abort();
      await loops;
    }
    clearTimeout(timer);
    clearInterval(this.reporter);
    this.unlisten.forEach((u) => u());
    await Promise.all(this.runners.map((r) => r.stop()));
    await removeWorker(this.deps.ds, WORKER_ID).catch((err) => this.deps.log.warn({ err }, 'could not remove this worker\'s row'));
  }

  private async loop(runner: Runner) {
    let jobModels: string[] = [];
    // The slot's outcomes being recorded, in order; the next job runs meanwhile. `earlier` is the
    // chain up to the outcome before the last: a slot takes no job until it is recorded, so that
    // outcomes never pile up behind runs faster than their writes.
    let settled = Promise.resolve();
    let earlier = settled;
    const slot: RunSlot = {
      runner,
      running: this.running,
      handBack: this.handBack.signal,
      settle: (record) => {
        earlier = settled;
        settled = settled.then(record).catch((err: unknown) => {
          // The job stays claimed; pg-boss hands it on when its heartbeat stops.
          this.deps.log.error({ err }, 'job could not be settled');
        });
      },
      usesModels: (ids) => jobModels.push(...ids),
    };
    let failures = 0;
    while (!this.stopping) {
      await earlier;
      const fetched = await this.fetch(runner);
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
      jobModels = [];
      if (fetched.attempt) {
        try {
          await runJob(this.deps, slot, fetched.attempt);
        } catch (err) {
          // The job stays claimed; pg-boss hands it on when its heartbeat stops.
          this.deps.log.error({ err, jobId: fetched.job.id }, 'job could not be run');
        }
      }
      const group = fetched.job.groupId;
      if (group && jobModels.length) this.modelsByAffinity.set(group, jobModels);
    }
    await settled;
  }

  /**
   * The next job for a slot, fetched and taken in one transaction (one durable commit for both):
   * one its runner is warm for when affinity allows, else the queues' next.
   */
  private async fetch(runner: Runner): Promise<Fetched> {
    try {
      // Jobs stay queued while storage's circuit is open, instead of each failing an attempt on it.
      if (!(await this.settings.dependenciesUp())) return {};
      const warm = this.settings.affinityWaitSeconds > 0 ? runner.warm.map(affinityOf) : [];
      const plan = warm.length || this.queues.length > 1 ? await this.planFor(warm) : { queues: this.queues, skip: [], top: 0 };
      let lost: Taken['lost'];
      // Run again if Postgres ends it to break a deadlock with a cancel or a delete of the job it took.
      const fetched = await retriedTransaction(this.deps.ds, async (em): Promise<Fetched> => {
        const options = { batchSize: 1, includeMetadata: true, db: inTransaction(em) } as const;
        for (const queue of plan.queues) {
          let [job] = plan.skip.length ? await this.deps.boss.fetch<unknown>(queue, { ...options, ignoreGroups: plan.skip, minPriority: plan.top }) : [];
          [job] = job ? [job] : await this.deps.boss.fetch<unknown>(queue, options);
          if (job) {
            const taken = await takeJob(this.deps, em, job);
            lost = taken.lost;
            return { job, attempt: taken.attempt };
          }
          // What the plan put first is gone (another worker took it): plan afresh next time.
          this.plans.delete(warm.join('\n'));
        }
        return {};
      });
      if (lost) this.removeLostFiles(lost.jobId, lost.leases);
      return fetched;
    } catch (err) {
      return { err };
    }
  }

  /** The slot's plan: a recent one for the same affinities (see PLAN_REUSE_MS), else a new one. */
  private async planFor(warm: string[]): Promise<Plan> {
    const key = warm.join('\n');
    const recent = this.plans.get(key);
    if (recent && performance.now() - recent.at < PLAN_REUSE_MS) return recent.plan;
    const plan = await this.plan(warm);
    this.plans.set(key, { plan, at: performance.now() });
    return plan;
  }

  /**
   * Where to look for the next job, from Kiln's rows of the waiting jobs, in one query: the
   * queues in the order their best waiting job asks (queues with nothing waiting in Kiln's rows
   * last: they may still hold a retry coming due), and which jobs a warm slot passes over for now —
   * those of models it has not loaded, as long as every one of them is younger than the affinity
   * window — never for a job of lower priority than the best waiting (`top`).
   */
  private async plan(warm: string[]): Promise<Plan> {
    const [row] = await this.deps.ds.query(
      `WITH p AS (SELECT queue, affinity, priority, created_at FROM jobs WHERE status = 'PENDING' AND queue = ANY($1))
       SELECT ARRAY(SELECT queue FROM p GROUP BY queue ORDER BY max(priority) DESC, min(created_at)) AS queues,
              (SELECT max(priority) FROM p) AS top,
              EXISTS (SELECT 1 FROM p WHERE affinity = ANY($2)) AS warm,
              ARRAY(SELECT affinity FROM p WHERE affinity IS NOT NULL AND affinity <> ALL($2)
                    GROUP BY affinity HAVING min(created_at) > now() - make_interval(secs => $3)) AS skip`,
      [this.queues, warm, this.settings.affinityWaitSeconds],
    );
    const queues: string[] = [...row.queues, ...this.queues.filter((q) => !row.queues.includes(q))];
    return { queues, skip: row.warm ? row.skip : [], top: row.top ?? 0 };
  }

  private async report(): Promise<void> {
    const warm = new Set(this.runners.flatMap((r) => r.warm.map(affinityOf)));
    const modelsLoaded = [...new Set([...this.modelsByAffinity].filter(([group]) => warm.has(group)).flatMap(([, ids]) => ids))];
    await reportWorker(this.deps.ds, {
      id: WORKER_ID,
      host: os.hostname(),
      pid: process.pid,
      kinds: this.settings.kinds,
      queues: this.queues,
      providers: this.providers?.usable ?? [],
      modelsLoaded,
      currentJobs: [...this.running.keys()],
    }).catch((err) => this.deps.log.warn({ err }, 'could not report this worker'));
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
