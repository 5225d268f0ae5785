import { Repeater, SlidingBuffer } from '@repeaterjs/repeater';
import type { DataSource } from 'typeorm';
import type { JobEvent } from '../db/entities/job-event.js';
import { type JobStatus, terminalStatuses } from '../db/entities/job.js';
import type { EventHub } from './event-hub.js';
import { eventsAfter } from './event-log.js';

const isTerminal = (e: JobEvent) => terminalStatuses.includes(e.status);

/**
 * A job's events after `afterSeq`: the stored ones first, then live ones, with no gap and no
 * duplicate across the switch (it watches before it reads, and only ever emits seq + 1). Ends
 * after the terminal event, at once if the job had already ended, or when the job is deleted.
 */
export function progressStream(ds: DataSource, hub: EventHub, jobId: string, afterSeq: number): AsyncIterable<JobEvent> {
  return new Repeater<JobEvent>(async (push, stop) => {
    let last = afterSeq;
    let reading: Promise<void> | undefined;
    let readAgain = false;
    let ended = false;
    const end = () => {
      ended = true;
      stop();
    };
    const emit = async (e: JobEvent) => {
      last = e.seq;
      await push(e);
      if (isTerminal(e)) end();
    };
    const catchUp = (): Promise<void> => {
      if (reading) {
        readAgain = true;
        return reading;
      }
      reading = (async () => {
        do {
          readAgain = false;
          for (const e of await eventsAfter(ds.manager, jobId, last)) {
            if (ended) return;
            await emit(e);
          }
        } while (readAgain && !ended);
      })()
        .catch((err) => stop(err))
        .finally(() => (reading = undefined));
      return reading;
    };

    const unwatch = hub.watch(jobId, (m) => {
      if (ended) return;
      if (m.kind === 'deleted') end();
      else if (m.kind === 'event' && m.event.seq === last + 1 && !reading) void emit(m.event).catch((err) => stop(err));
      else if (m.kind === 'resync' || (m.kind === 'event' && m.event.seq > last)) void catchUp();
    });
    try {
      await catchUp();
      if (!ended) {
        const [row] = await ds.query('SELECT status, event_seq FROM jobs WHERE id = $1', [jobId]);
        // Already over, or deleted, with nothing after the cursor: there is nothing left to wait for.
        if (!row || (terminalStatuses.includes(row.status as JobStatus) && row.event_seq <= last)) end();
      }
      await stop;
    } finally {
      unwatch();
    }
  });
}

/** Every job's events from now on, for dashboards; a slow reader loses the oldest. */
export function allEventsStream(hub: EventHub, filter: (e: JobEvent, kind: string) => boolean): AsyncIterable<JobEvent> {
  return new Repeater<JobEvent>(async (push, stop) => {
    const unwatch = hub.watchAll((e, kind) => {
      if (filter(e, kind)) void push(e);
    });
    await stop;
    unwatch();
  }, new SlidingBuffer(1000));
}
