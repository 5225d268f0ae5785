import type { DataSource } from 'typeorm';
import type { JobEvent } from '../db/entities/job-event.js';
import type { Logger } from '../log.js';
import { Channel, type EventHint } from './channels.js';
import { eventFromRow } from './event-log.js';
import type { PgListener } from './pg-listener.js';

/** What a watcher of one job is told. */
export type WatchMessage =
  | { kind: 'event'; event: JobEvent }
  /** Notifications may have been missed: read the table. */
  | { kind: 'resync' }
  | { kind: 'deleted' };

/**
 * Fans NOTIFY hints out to this process's subscribers. A hint is read from the table once per
 * process, however many subscribers watch that job.
 */
export class EventHub {
  private watchers = new Map<string, Set<(m: WatchMessage) => void>>();
  private everything = new Set<(e: JobEvent, kind: string) => void>();
  private readonly unlisten: (() => void)[];

  constructor(
    private readonly ds: DataSource,
    listener: PgListener,
    private readonly log: Logger,
  ) {
    this.unlisten = [
      listener.on(Channel.events, (payload) => void this.onHint(payload)),
      listener.on(Channel.deleted, (id) => this.send(id, { kind: 'deleted' })),
      listener.onReconnect(() => {
        for (const id of this.watchers.keys()) this.send(id, { kind: 'resync' });
      }),
    ];
  }

  /** Stops listening; streams still open get nothing more. */
  dispose(): void {
    this.unlisten.forEach((u) => u());
    this.watchers.clear();
    this.everything.clear();
  }

  /** Watches one job; returns the function that stops watching. */
  watch(jobId: string, onMessage: (m: WatchMessage) => void): () => void {
    let set = this.watchers.get(jobId);
    if (!set) this.watchers.set(jobId, (set = new Set()));
    set.add(onMessage);
    return () => {
      set.delete(onMessage);
      if (set.size === 0) this.watchers.delete(jobId);
    };
  }

  /** Receives every job's events as they happen (no replay), with the job's kind. */
  watchAll(onEvent: (e: JobEvent, kind: string) => void): () => void {
    this.everything.add(onEvent);
    return () => this.everything.delete(onEvent);
  }

  /** Live subscriptions in this process (for metrics). */
  get size(): number {
    let n = this.everything.size;
    for (const set of this.watchers.values()) n += set.size;
    return n;
  }

  private async onHint(payload: string) {
    let hint: EventHint;
    try {
      hint = JSON.parse(payload) as EventHint;
    } catch {
      this.log.warn({ payload }, 'malformed event notification');
      return;
    }
    if (!this.watchers.has(hint.j) && this.everything.size === 0) return;
    try {
      const rows: Record<string, unknown>[] = await this.ds.query('SELECT * FROM job_events WHERE job_id = $1 AND seq = $2', [hint.j, hint.s]);
      if (!rows[0]) return; // deleted since
      const event = eventFromRow(rows[0]);
      this.send(hint.j, { kind: 'event', event });
      for (const fn of this.everything) fn(event, hint.k);
    } catch (err) {
      this.log.warn({ err, hint }, 'could not read a notified event; resyncing its watchers');
      this.send(hint.j, { kind: 'resync' });
    }
  }

  private send(jobId: string, message: WatchMessage) {
    for (const fn of this.watchers.get(jobId) ?? []) fn(message);
  }
}
