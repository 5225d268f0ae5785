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
  const rows: Record<string, unknown>[] = await em.query(
    `WITH j AS (
       UPDATE jobs SET event_seq = event_seq + 1, current_step = $2, status = $3, progress = $4
       WHERE id = $1 AND ($11::int IS NULL OR (lease = $11 AND lease_expires_at > now()))
       RETURNING id, event_seq, kind
     ), e AS (
       INSERT INTO job_events
         (job_id, seq, attempt, step, status, progress, step_index, step_count, message, eta_seconds, preview, detail, at)
       SELECT id, event_seq, $5, $2, $3, $4, $6, $7, $8, $9, $10, $12, COALESCE($13, now()) FROM j
       RETURNING *
     )
     SELECT e.*, pg_notify('${Channel.events}', json_build_object('j', e.job_id, 's', e.seq, 'st', e.status, 'k', j.kind)::text)
     FROM e, j`,
    [
      jobId,
      ev.step,
      ev.status,
      roundProgress(ev.progress),
      ev.attempt,
      ev.stepIndex ?? null,
      ev.stepCount ?? null,
      ev.message ?? null,
      ev.etaSeconds ?? null,
      ev.preview ?? null,
      lease?.lease ?? null,
      ev.detail ? JSON.stringify(ev.detail) : null,
      ev.at ?? null,
    ],
  );
  return rows[0] ? eventFromRow(rows[0]) : undefined;
}

/** Progress as clients show it: sums of step fractions such as 0.1 + 0.2 drop their float noise. */
const roundProgress = (progress: number) => Math.round(progress * 1e4) / 1e4;

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
    at: r.at as Date,
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
