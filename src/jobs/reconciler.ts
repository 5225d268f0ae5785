import type { PgBoss } from 'pg-boss';
import type { DataSource, EntityManager } from 'typeorm';
import { retriedTransaction } from '../db/retried-transaction.js';
import type { Logger } from '../log.js';
import { queryRows } from '../db/sql.js';
import { closeLostRuns, DEADLINE_PASSED, type LostRunsHandler, requeue } from './attempt.js';
import { inTransaction } from './queue.js';
import { endJob } from './terminal.js';

export interface ReconcilerOptions {
  intervalMs: number;
  /** Other periodic clean-ups to run with each tick (expired uploads, idle rate-limit buckets). */
  housekeeping: (() => Promise<void>)[];
  /** How long past its lease's expiry a RUNNING job is left to its worker. */
  graceSeconds: number;
  /** Told of the runs closed because their worker was gone (their files are to be removed). */
  onLostRuns: LostRunsHandler;
}

/**
 * Keeps jobs truthful when no worker will: cancels those that missed their deadline in the
 * queue, and settles RUNNING ones whose worker died (pg-boss retries the job, or has given up on
 * it, or it was cancelled meanwhile). Also forgets expired idempotency keys, and runs the
 * housekeeping it is given. Runs at start and then periodically in every process; each change
 * is conditional on what it read, so processes can run it side by side.
 */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;

  constructor(
    private readonly ds: DataSource,
    private readonly boss: PgBoss,
    private readonly log: Logger,
    private readonly opts: ReconcilerOptions,
  ) {}

  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.opts.intervalMs).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking;
  }

  tick(): Promise<void> {
    this.ticking ??= (async () => {
      try {
        await this.expireDeadlines();
        await this.recoverAbandoned();
        await this.ds.query('DELETE FROM idempotency_keys WHERE expires_at < now()');
        for (const task of this.opts.housekeeping) await task();
      } catch (err) {
        this.log.warn({ err }, 'reconciliation failed; trying again next time');
      } finally {
        this.ticking = undefined;
      }
    })();
    return this.ticking;
  }

  private async expireDeadlines() {
    const due: { id: string; queue: string }[] = await this.ds.query(
      `SELECT id, queue FROM jobs WHERE status = 'PENDING' AND started_at IS NULL AND deadline_at < now() LIMIT 100`,
    );
    for (const { id, queue } of due) {
      await retriedTransaction(this.ds, async (em) => {
        const [still] = await em.query(
          `SELECT 1 FROM jobs WHERE id = $1 AND status = 'PENDING' AND started_at IS NULL AND deadline_at < now() FOR UPDATE`,
          [id],
        );
        if (!still) return;
        if (await endJob(em, id, { ...DEADLINE_PASSED, attempt: 0 })) await this.boss.cancel(queue, id, { db: inTransaction(em) });
      });
      this.log.info({ jobId: id }, 'cancelled: deadline passed in the queue');
    }
  }

  private async recoverAbandoned() {
    const stale: Stale[] = await this.ds.query(
      `SELECT id, queue, lease, retry_count + 1 AS attempt, cancel_requested_at IS NOT NULL AS cancel FROM jobs
       WHERE status = 'RUNNING' AND lease_expires_at < now() - make_interval(secs => $1) LIMIT 100`,
      [this.opts.graceSeconds],
    );
    for (const g of stale) {
      const [job] = await this.boss.findJobs(g.queue, { id: g.id });
      // pg-boss has not yet noticed the missed heartbeat; the job is still its worker's.
      if (job?.state === 'active' && !g.cancel) continue;
      const lost = await retriedTransaction(this.ds, async (em) => {
        const [still] = await queryRows(
          em,
          `UPDATE jobs SET lease = lease + 1 WHERE id = $1 AND status = 'RUNNING' AND lease = $2 AND lease_expires_at < now() RETURNING id`,
          [g.id, g.lease],
        );
        if (!still) return [];
        const leases = await closeLostRuns(em, g.id);
        const outcome = await this.settle(em, g, job?.state);
        this.log.warn({ jobId: g.id, jobState: job?.state ?? 'missing', outcome }, 'recovered a job whose worker stopped answering');
        return leases;
      });
      if (lost.length) this.opts.onLostRuns(g.id, lost);
    }
  }

  private async settle(em: EntityManager, g: Stale, jobState: string | undefined) {
    const db = inTransaction(em);
    if (g.cancel || jobState === 'cancelled') {
      await endJob(em, g.id, { status: 'CANCELLED', message: 'Cancelled; its worker had stopped answering', attempt: g.attempt });
      if (jobState !== 'cancelled') await this.boss.cancel(g.queue, g.id, { db });
      return 'cancelled';
    }
    if (jobState === 'retry' || jobState === 'created') {
      await requeue(em, g.id, g.attempt, `Attempt ${g.attempt} lost its worker; retrying`);
      return 'retry';
    }
    await endJob(em, g.id, {
      status: 'FAILED',
      message: 'WORKER_LOST: its worker stopped answering and no retries are left',
      attempt: g.attempt,
      error: { code: 'WORKER_LOST', message: 'its worker stopped answering and no retries are left', retryable: true },
    });
    return 'failed';
  }
}

/** A RUNNING job whose lease ran out. */
interface Stale {
  id: string;
  queue: string;
  lease: number;
  attempt: number;
  cancel: boolean;
}
