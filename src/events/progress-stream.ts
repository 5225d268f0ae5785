import type { DataSource } from 'typeorm';
import type { JobEvent } from '../db/entities/job-event.js';
import { type JobStatus, terminalStatuses } from '../db/entities/job.js';
import type { EventHub } from './event-hub.js';
import { eventsAfter } from './event-log.js';
import { PushQueue } from './push-queue.js';

const isTerminal = (e: JobEvent) => terminalStatuses.includes(e.status);

/**
 * A job's events after `afterSeq`: the stored ones first, then live ones, with no gap and no
 * duplicate across the switch (it watches before it reads, and only ever emits seq + 1). Ends
 * after the terminal event, at once if the job had already ended, or when the job is deleted.
 */
export function progressStream(ds: DataSource, hub: EventHub, jobId: string, afterSeq: number): AsyncIterable<JobEvent> {
  let unwatch = () => {};
  const queue = new PushQueue<JobEvent>(() => unwatch());
  let last = afterSeq;
  let reading: Promise<void> | undefined;
  let readAgain = false;
  const emit = (e: JobEvent) => {
    last = e.seq;
    queue.push(e);
    if (isTerminal(e)) queue.end();
  };
  const catchUp = (): Promise<void> => {
    if (reading) {
      readAgain = true;
      return reading;
    }
    reading = (async () => {
      try {
        do {
          readAgain = false;
          for (const e of await eventsAfter(ds.manager, jobId, last)) {
            if (queue.closed) return;
            if (e.seq > last) emit(e);
          }
        } while (readAgain && !queue.closed);
      } finally {
        // In the same turn as the last check of readAgain: a hint arriving later starts a new read.
        reading = undefined;
      }
    })();
    return reading;
  };

  unwatch = hub.watch(jobId, (m) => {
    if (queue.closed) return;
    if (m.kind === 'deleted') queue.end();
    else if (m.kind === 'event' && m.event.seq === last + 1 && !reading) emit(m.event);
    else if (m.kind === 'resync' || (m.kind === 'event' && m.event.seq > last)) catchUp().catch((err) => queue.end(err));
  });
  void (async () => {
    await catchUp();
    if (queue.closed) return;
    const [row] = await ds.query('SELECT status, event_seq FROM jobs WHERE id = $1', [jobId]);
    // Already over, or deleted, with nothing after the cursor: there is nothing left to wait for.
    if (!row || (terminalStatuses.includes(row.status as JobStatus) && row.event_seq <= last)) queue.end();
  })().catch((err) => queue.end(err));
  return queue;
}

/** Every job's events from now on, for dashboards; a slow reader loses the oldest. */
export function allEventsStream(hub: EventHub, filter: (e: JobEvent, kind: string) => boolean): AsyncIterable<JobEvent> {
  let unwatch = () => {};
  const queue = new PushQueue<JobEvent>(() => unwatch(), 1000);
  unwatch = hub.watchAll((e, kind) => {
    if (filter(e, kind)) queue.push(e);
  });
  return queue;
}
