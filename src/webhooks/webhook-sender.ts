import type { JobWithMetadata } from 'pg-boss';
import { Channel } from '../events/channels.js';
import type { PgListener } from '../events/pg-listener.js';
import { type DeliveryDeps, deliver } from './deliver.js';
import { DELIVERY_QUEUE } from './delivery-queue.js';
import { queueNewDeliveries } from './outbox.js';

/**
 * What every Kiln process (API or worker) runs for webhooks: it puts new deliveries on the
 * queue (outbox.ts) and sends those that are due, up to KILN_WEBHOOK_CONCURRENCY at once. It
 * looks when woken (a NOTIFY from the trigger or a redelivery, a slot freeing, a retry this
 * process scheduled coming due) and otherwise every KILN_WEBHOOK_POLL_MS, which is how it finds
 * retries other processes scheduled.
 */
export class WebhookSender {
  private running = new Set<Promise<void>>();
  private timers = new Set<NodeJS.Timeout>();
  private unlisten: (() => void)[] = [];
  private stopping = false;
  private woken = false;
  /** Whether the outbox may hold rows: after a NOTIFY, a reconnect, at start and at each poll. */
  private outboxDue = true;
  private wakeSleeper: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly deps: DeliveryDeps,
    private readonly listener: PgListener,
  ) {}

  start(): void {
    const lookInOutbox = () => {
      this.outboxDue = true;
      this.wake();
    };
    this.unlisten.push(this.listener.on(Channel.webhooks, lookInOutbox), this.listener.onReconnect(lookInOutbox));
    this.loop = this.run();
  }

  /** Stops looking; deliveries under way finish (each within its timeout). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.unlisten.forEach((u) => u());
    this.timers.forEach((t) => clearTimeout(t));
    this.wake();
    await this.loop;
    await Promise.all(this.running);
  }

  private wake() {
    this.woken = true;
    this.wakeSleeper?.();
  }

  private async run() {
    const { concurrency, pollMs } = this.deps.settings;
    let failures = 0;
    while (!this.stopping) {
      this.woken = false;
      try {
        if (this.outboxDue) {
          this.outboxDue = false;
          await queueNewDeliveries(this.deps.ds, this.deps.boss, this.deps.settings);
        }
        const free = concurrency - this.running.size;
        const jobs = free > 0 ? await this.deps.boss.fetch<unknown>(DELIVERY_QUEUE, { batchSize: free, includeMetadata: true }) : [];
        for (const job of jobs) this.send(job);
        failures = 0;
        // A full batch may have left more waiting.
        if (free > 0 && jobs.length === free) continue;
      } catch (err) {
        this.outboxDue = true;
        failures++;
        this.deps.log.error({ err }, 'could not look for webhook deliveries');
        this.woken = false;
        await this.sleep(Math.min(30_000, 500 * 2 ** failures));
        continue;
      }
      if (await this.sleep(pollMs)) this.outboxDue = true;
    }
  }

  private send(job: JobWithMetadata<unknown>) {
    const sending: Promise<void> = deliver(this.deps, job)
      .then((next) => next && this.wakeAt(next))
      .catch((err) => this.deps.log.error({ err, queueJobId: job.id }, 'webhook delivery could not be settled; the queue retries it when it expires'))
      .finally(() => {
        this.running.delete(sending);
        this.wake();
      });
    this.running.add(sending);
  }

  private wakeAt(at: Date) {
    if (this.stopping) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.wake();
      // A little after the job's start time, so that the fetch finds it due.
    }, Math.max(0, at.getTime() - Date.now()) + 25);
    timer.unref();
    this.timers.add(timer);
  }

  /** Resolves true when the time ran out, false when woken first. */
  private sleep(ms: number): Promise<boolean> {
    if (this.woken || this.stopping) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (timedOut: boolean) => {
        clearTimeout(timer);
        this.wakeSleeper = undefined;
        resolve(timedOut);
      };
      const timer = setTimeout(() => done(true), ms);
      this.wakeSleeper = () => done(false);
    });
  }
}
