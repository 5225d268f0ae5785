import type { DataSource } from 'typeorm';
import type { JobEvent } from '../db/entities/job-event.js';
import { terminalStatuses } from '../db/entities/job.js';
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

/** A job whose events this process reads: up to where it has read, and whether a read is due. */
interface Reading {
  kind: string;
  /** The last event read and handed on. */
  seq: number;
  /** The newest event a hint has named. */
  upTo: number;
  busy: boolean;
  /** Its terminal event was handed on: nothing follows. */
  over: boolean;
}

/**
 * Fans NOTIFY hints out to this process's subscribers. Hints are read from the table once per
 * process, however many subscribers watch that job, and in order: the events a burst of hints
 * names are read in one query and handed on by sequence, so every watcher sees them in order
 * without reading anything itself.
 */
export class EventHub {
  private watchers = new Map<string, Set<(m: WatchMessage) => void>>();
  private everything = new Set<(e: JobEvent, kind: string) => void>();
  private reading = new Map<string, Reading>();
  private readonly unlisten: (() => void)[];

  constructor(
    private readonly ds: DataSource,
    listener: PgListener,
    private readonly log: Logger,
  ) {
    this.unlisten = [
      listener.on(Channel.events, (payload) => void this.onHint(payload)),
      listener.on(Channel.deleted, (id) => {
        this.reading.delete(id);
        this.send(id, { kind: 'deleted' });
      }),
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
      if (set.size > 0) return;
      this.watchers.delete(jobId);
      if (this.everything.size === 0 && !this.reading.get(jobId)?.busy) this.reading.delete(jobId);
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

  private onHint(payload: string) {
    let hint: EventHint;
    try {
      hint = JSON.parse(payload) as EventHint;
    } catch {
      this.log.warn({ payload }, 'malformed event notification');
      return;
    }
    if (!this.watchers.has(hint.j) && this.everything.size === 0) return;
    let r = this.reading.get(hint.j);
    if (!r) this.reading.set(hint.j, (r = { kind: hint.k, seq: hint.s - 1, upTo: hint.s, busy: false, over: false }));
    r.upTo = Math.max(r.upTo, hint.s);
    // The next event, whole in its hint: handed on without a read.
    if (!r.busy && hint.e && hint.s === r.seq + 1) this.handOn(hint.j, r, eventFromRow(hint.e));
    else if (!r.busy) void this.read(hint.j, r);
  }

  private handOn(jobId: string, r: Reading, event: JobEvent) {
    r.seq = event.seq;
    r.over ||= terminalStatuses.includes(event.status);
    this.send(jobId, { kind: 'event', event });
    for (const fn of this.everything) fn(event, r.kind);
    if (r.over) this.reading.delete(jobId);
  }

  /** Reads a job's events after the last handed on, until none is named that is not read. */
  private async read(jobId: string, r: Reading) {
    r.busy = true;
    try {
      while (r.seq < r.upTo) {
        const rows: Record<string, unknown>[] = await this.ds.query('SELECT * FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq', [jobId, r.seq]);
        // Deleted since: its watchers hear of that on their own channel.
        if (!rows.length) break;
        for (const row of rows) this.handOn(jobId, r, eventFromRow(row));
      }
    } catch (err) {
      this.log.warn({ err, jobId }, 'could not read notified events; resyncing their watchers');
      this.send(jobId, { kind: 'resync' });
    } finally {
      r.busy = false;
      // Kept while watched, so that a later hint reads on from here: nothing is handed on twice.
      if (r.over || (!this.watchers.has(jobId) && this.everything.size === 0)) this.reading.delete(jobId);
    }
  }

  private send(jobId: string, message: WatchMessage) {
    for (const fn of this.watchers.get(jobId) ?? []) fn(message);
  }
}
