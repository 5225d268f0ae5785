import type { EntityManager } from 'typeorm';
import type { GenerationEvent } from '../db/entities/generation-event.js';
import type { GenerationStatus, PipelineStep } from '../db/entities/generation.js';
import { Channel } from './channels.js';

export interface NewEvent {
  step: PipelineStep;
  status: GenerationStatus;
  attempt: number;
  progress: number;
  stepIndex?: number | null;
  stepCount?: number | null;
  message?: string | null;
  etaSeconds?: number | null;
  preview?: string | null;
}

/** The lease a worker holds on a generation; its writes land only while it still holds it. */
export interface Lease {
  lease: number;
}

/**
 * Appends an event in the caller's transaction and moves the generation's step, status and
 * progress with it. The row lock on the generation orders its events, and the NOTIFY goes out
 * when the transaction commits. With a lease, nothing is written unless that lease is still
 * held and unexpired; the result is then undefined.
 */
export async function appendEvent(em: EntityManager, generationId: string, ev: NewEvent, lease?: Lease): Promise<GenerationEvent | undefined> {
  const rows: Record<string, unknown>[] = await em.query(
    `WITH g AS (
       UPDATE generations SET event_seq = event_seq + 1, current_step = $2, status = $3, progress = $4
       WHERE id = $1 AND ($11::int IS NULL OR (lease = $11 AND lease_expires_at > now()))
       RETURNING id, event_seq
     ), e AS (
       INSERT INTO generation_events
         (generation_id, seq, attempt, step, status, progress, step_index, step_count, message, eta_seconds, preview)
       SELECT id, event_seq, $5, $2, $3, $4, $6, $7, $8, $9, $10 FROM g
       RETURNING *
     )
     SELECT e.*, pg_notify('${Channel.events}', json_build_object('g', e.generation_id, 's', e.seq, 'st', e.status)::text)
     FROM e`,
    [
      generationId,
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
    ],
  );
  return rows[0] ? eventFromRow(rows[0]) : undefined;
}

/** Progress as clients show it: sums of step fractions such as 0.1 + 0.2 drop their float noise. */
const roundProgress = (progress: number) => Math.round(progress * 1e4) / 1e4;

export function eventFromRow(r: Record<string, unknown>): GenerationEvent {
  return {
    generationId: r.generation_id as string,
    seq: r.seq as number,
    attempt: r.attempt as number,
    step: r.step as PipelineStep,
    status: r.status as GenerationStatus,
    stepIndex: r.step_index as number | null,
    stepCount: r.step_count as number | null,
    progress: r.progress as number,
    message: r.message as string | null,
    etaSeconds: r.eta_seconds as number | null,
    preview: r.preview as string | null,
    at: r.at as Date,
  };
}

/** Events of a generation after a cursor, oldest first. */
export async function eventsAfter(em: EntityManager, generationId: string, afterSeq: number, limit = 1000): Promise<GenerationEvent[]> {
  const rows: Record<string, unknown>[] = await em.query(
    'SELECT * FROM generation_events WHERE generation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
    [generationId, afterSeq, limit],
  );
  return rows.map(eventFromRow);
}
