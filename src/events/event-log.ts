import type { EntityManager } from 'typeorm';
import type { JobEvent } from '../db/entities/job-event.js';
import type { JobStatus } from '../db/entities/job.js';
import { Channel } from './channels.js';

export interface NewEvent {
  step: string;
  status: JobStatus;
  attempt: number;
  progress: number;
  stepIndex?: number | null;
  stepCount?: number | null;
  message?: string | null;
  etaSeconds?: number | null;
  preview?: string | null;
  detail?: Record<string, unknown> | null;
  /** When it happened, when that was not at the write (a step the runner timed). */
  at?: Date | null;
}

/**
 * Events up to this size travel whole in their notification (NOTIFY takes at most 8000 bytes):
 * they never change once written, so receivers need not read them back; larger ones (with a big
 * preview) are read from the table.
 */
const NOTIFIED_EVENT_BYTES = 7000;

/**
 * What the statement that appends events also writes, in the same statement (so with no
 * transaction around it): more columns of the job (`set`) and more common table expressions
 * (`ctes`), which may use `j` (the updated job: id, event_seq, kind), `$1` (the job's id), `$6`
 * (the lease) and their own parameters, numbered from `first`.
 */
export type AlsoWritten = (first: number) => { set: string; ctes: string; params: unknown[] };
const FIRST_EXTRA_PARAM = 9;

/** The lease a worker holds on a job; its writes land only while it still holds it. */
export interface Lease {
  lease: number;
}

/**
 * Appends an event in the caller's transaction and moves the job's step, status and progress
 * with it. The row lock on the job orders its events, and the NOTIFY goes out when the
 * transaction commits. With a lease, nothing is written unless that lease is still held and
 * unexpired; the result is then undefined.
 */
export async function appendEvent(em: EntityManager, jobId: string, ev: NewEvent, lease?: Lease): Promise<JobEvent | undefined> {
  return (await appendEvents(em, jobId, [ev], { lease }))[0];
}

/**
 * Appends events in order in one statement (the job takes the last one's step, status and
 * progress); none of them when the lease is refused. `progressOnly`: they change no state of
 * the job (its progress between QUEUED and the end), so their commit need not wait for the disk:
 * a crash may lose them, never a state change, and the next durable commit makes them durable.
 */
export async function appendEvents(
  em: EntityManager,
  jobId: string,
  events: NewEvent[],
  opts: { lease?: Lease | undefined; progressOnly?: boolean; also?: AlsoWritten } = {},
): Promise<JobEvent[]> {
  const also = opts.also?.(FIRST_EXTRA_PARAM);
  const last = events.at(-1)!;
  const rows = events.map((ev, i) => ({
    i: i + 1,
    attempt: ev.attempt,
    step: ev.step,
    status: ev.status,
    progress: roundProgress(ev.progress),
    step_index: ev.stepIndex ?? null,
    step_count: ev.stepCount ?? null,
    message: ev.message ?? null,
    eta_seconds: ev.etaSeconds ?? null,
    preview: ev.preview ?? null,
    detail: ev.detail ?? null,
    at: ev.at?.toISOString() ?? null,
  }));
  const result: Record<string, unknown>[] = await em.query(
    `WITH j AS (
       UPDATE jobs SET event_seq = event_seq + $2, current_step = $3, status = $4, progress = $5${also ? `, ${also.set}` : ''}
       WHERE id = $1 AND ($6::int IS NULL OR (lease = $6 AND lease_expires_at > now()))
       RETURNING id, event_seq, kind
     ), e AS (
       INSERT INTO job_events
         (job_id, seq, attempt, step, status, progress, step_index, step_count, message, eta_seconds, preview, detail, at)
       SELECT j.id, j.event_seq - $2 + r.i, r.attempt, r.step, r.status, r.progress, r.step_index, r.step_count, r.message,
              r.eta_seconds, r.preview, r.detail, COALESCE(r.at, now())
       FROM j, jsonb_to_recordset($7::jsonb) AS r(i int, attempt int, step text, status text, progress float8, step_index int,
         step_count int, message text, eta_seconds float8, preview text, detail jsonb, at timestamptz)
       RETURNING *
     ), commit AS (
       SELECT CASE WHEN $8 THEN set_config('synchronous_commit', 'off', true) END
     )${also ? `, ${also.ctes}` : ''}
     SELECT e.*, pg_notify('${Channel.events}', json_build_object('j', e.job_id, 's', e.seq, 'st', e.status, 'k', j.kind,
              'e', CASE WHEN octet_length(row_to_json(e)::text) <= ${NOTIFIED_EVENT_BYTES} THEN row_to_json(e) END)::text)
     FROM e, j, commit ORDER BY e.seq`,
    [
      jobId,
      events.length,
      last.step,
      last.status,
      roundProgress(last.progress),
      opts.lease?.lease ?? null,
      JSON.stringify(rows),
      opts.progressOnly ?? false,
      ...(also?.params ?? []),
    ],
  );
  return result.map(eventFromRow);
}

/** Progress as clients show it: sums of step fractions such as 0.1 + 0.2 drop their float noise. */
const roundProgress = (progress: number) => Math.round(progress * 1e4) / 1e4;

/** An event from its row, as the table or a notification (JSON, `at` a string) gives it. */
export function eventFromRow(r: Record<string, unknown>): JobEvent {
  return {
    jobId: r.job_id as string,
    seq: r.seq as number,
    attempt: r.attempt as number,
    step: r.step as string,
    status: r.status as JobStatus,
    stepIndex: r.step_index as number | null,
    stepCount: r.step_count as number | null,
    progress: r.progress as number,
    message: r.message as string | null,
    etaSeconds: r.eta_seconds as number | null,
    preview: r.preview as string | null,
    detail: r.detail as Record<string, unknown> | null,
    at: r.at instanceof Date ? r.at : new Date(r.at as string),
  };
}

/** Events of a job after a cursor, oldest first. */
export async function eventsAfter(em: EntityManager, jobId: string, afterSeq: number, limit = 1000): Promise<JobEvent[]> {
  const rows: Record<string, unknown>[] = await em.query(
    'SELECT * FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
    [jobId, afterSeq, limit],
  );
  return rows.map(eventFromRow);
}
