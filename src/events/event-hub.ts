import type { DataSource } from 'typeorm';
import type { GenerationEvent } from '../db/entities/generation-event.js';
import type { Logger } from '../log.js';
import { Channel, type EventHint } from './channels.js';
import { eventFromRow } from './event-log.js';
import type { PgListener } from './pg-listener.js';

/** What a watcher of one generation is told. */
export type WatchMessage =
  | { kind: 'event'; event: GenerationEvent }
  /** Notifications may have been missed: read the table. */
  | { kind: 'resync' }
  | { kind: 'deleted' };

/**
 * Fans NOTIFY hints out to this process's subscribers. A hint is read from the table once per
 * process, however many subscribers watch that generation.
 */
export class EventHub {
  private watchers = new Map<string, Set<(m: WatchMessage) => void>>();
  private everything = new Set<(e: GenerationEvent) => void>();

  constructor(
    private readonly ds: DataSource,
    listener: PgListener,
    private readonly log: Logger,
  ) {
    listener.on(Channel.events, (payload) => void this.onHint(payload));
    listener.on(Channel.deleted, (id) => this.send(id, { kind: 'deleted' }));
    listener.onReconnect(() => {
      for (const id of this.watchers.keys()) this.send(id, { kind: 'resync' });
    });
  }

  /** Watches one generation; returns the function that stops watching. */
  watch(generationId: string, onMessage: (m: WatchMessage) => void): () => void {
    let set = this.watchers.get(generationId);
    if (!set) this.watchers.set(generationId, (set = new Set()));
    set.add(onMessage);
    return () => {
      set.delete(onMessage);
      if (set.size === 0) this.watchers.delete(generationId);
    };
  }

  /** Receives every generation's events as they happen (no replay). */
  watchAll(onEvent: (e: GenerationEvent) => void): () => void {
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
    if (!this.watchers.has(hint.g) && this.everything.size === 0) return;
    try {
      const rows: Record<string, unknown>[] = await this.ds.query(
        'SELECT * FROM generation_events WHERE generation_id = $1 AND seq = $2',
        [hint.g, hint.s],
      );
      if (!rows[0]) return; // deleted since
      const event = eventFromRow(rows[0]);
      this.send(hint.g, { kind: 'event', event });
      for (const fn of this.everything) fn(event);
    } catch (err) {
      this.log.warn({ err, hint }, 'could not read a notified event; resyncing its watchers');
      this.send(hint.g, { kind: 'resync' });
    }
  }

  private send(generationId: string, message: WatchMessage) {
    for (const fn of this.watchers.get(generationId) ?? []) fn(message);
  }
}
