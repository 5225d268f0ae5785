import { setTimeout as delay } from 'node:timers/promises';
import type { DataSource } from 'typeorm';
import { isDatabaseUnavailable } from '../db/outage.js';
import { type Attempt, recordEvents, type StepEvent } from '../jobs/attempt.js';

/**
 * Steps reported within this long of each other go out in one write; a task done by then has
 * them written with its completion, in no write of their own. Short beside what a watcher
 * notices, long beside a fast model's whole run.
 */
const LINGER_MS = 3;

/**
 * Writes an attempt's step events in order while its task goes on: one write in flight at a time,
 * and whatever was reported meanwhile (or within LINGER_MS of the first) goes out together in the
 * next one, so a fast task costs a statement per burst of steps, not per step. While the database cannot be reached the events
 * wait and are written once it is back (the task goes on meanwhile); a write the database refuses
 * (the lease was lost) is handed to `onError`, and nothing more is written.
 */
export class EventWriter {
  private queue: StepEvent[] = [];
  private flushing: Promise<void> | undefined;
  /** A write failed, or the caller took the queue: nothing more is written here. */
  private closed = false;
  /** Ends the wait for more steps before a write: the caller takes them, or waits for them. */
  private endLinger: (() => void) | undefined;

  constructor(
    private readonly ds: DataSource,
    private readonly attempt: Attempt,
    private readonly onError: (err: unknown) => void,
  ) {}

  push(event: StepEvent): void {
    if (this.closed) return;
    this.queue.push(event);
    this.flushing ??= this.flush();
  }

  /** Resolves once every event pushed so far is written (or the writes failed); no lingering for more. */
  async written(): Promise<void> {
    this.endLinger?.();
    while (this.flushing) await this.flushing;
  }

  /**
   * Stops writing: waits for the write in flight and hands back what is still queued, for the
   * caller to write in its own transaction (the completion).
   */
  async take(): Promise<StepEvent[]> {
    this.closed = true;
    this.endLinger?.();
    await this.flushing;
    return this.queue.splice(0);
  }

  private async flush(): Promise<void> {
    try {
      // A plain timer, not an aborted timers/promises delay: that costs an AbortError (with its stack) per job.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, LINGER_MS);
        this.endLinger = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.endLinger = undefined;
      while (this.queue.length && !this.closed) {
        const batch = this.queue.splice(0);
        try {
          await recordEvents(this.ds, this.attempt, batch);
        } catch (err) {
          if (isDatabaseUnavailable(err)) {
            this.queue.unshift(...batch);
            await delay(500);
            continue;
          }
          this.closed = true;
          this.onError(err);
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }
}
