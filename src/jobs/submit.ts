import crypto from 'node:crypto';
import type { PgBoss } from 'pg-boss';
import { type DataSource, type EntityManager, In } from 'typeorm';
import { type Job, JobEntity, QUEUED } from '../db/entities/job.js';
import { entityFromRow } from '../db/sql.js';
import { Channel } from '../events/channels.js';
import { appendEvent } from '../events/event-log.js';
import { claimKey, recordKey, requestHash } from './idempotency.js';
import type { JobOptions } from './job-options.js';
import type { KindDefinition, Prepared } from './kind.js';
import { inTransaction, type JobData, type JobPolicy } from './queue.js';

export interface SubmitDeps {
  ds: DataSource;
  boss: PgBoss;
  /** Retry, expiry and heartbeat options a job of this kind is sent with. */
  jobPolicy(kind: KindDefinition): JobPolicy;
  /** Writes what a job's options ask for beyond its row (its webhook), in the submitting transaction. */
  onQueued?(em: EntityManager, job: Job, options: JobOptions): Promise<void>;
}

export interface Submission {
  kind: KindDefinition;
  /** Each input (validated against the kind's parameters) with its path in the operation (`input`, `inputs.3`), for error fields. */
  inputs: { input: Record<string, unknown>; options: JobOptions; field: string }[];
  idempotency?: { scope: string; key: string; operation: string; ttlHours: number };
}

/**
 * Writes each job, its QUEUED event and its pg-boss job in one transaction: afterwards either
 * all of them exist or none do. The pg-boss job's id is the job's. With an idempotency key, a
 * repeat of an earlier request returns what that request made instead.
 */
export async function submitJobs(deps: SubmitDeps, s: Submission): Promise<{ jobs: Job[]; estimatedTotalSeconds: number }> {
  const { kind } = s;
  const { jobs, prepared } = await deps.ds.transaction(async (em) => {
    const prepared: Prepared<Record<string, unknown>>[] = [];
    for (const { input, field } of s.inputs) prepared.push(await kind.prepare(em, input, field));

    const key = s.idempotency;
    const earlier = key
      ? await claimKey(em, key.scope, key.key, requestHash(key.operation, s.inputs.map((i) => ({ ...i.input, ...i.options }))), key.ttlHours)
      : undefined;
    if (earlier) {
      const rows = await em.findBy(JobEntity, { id: In(earlier) });
      return { prepared, jobs: earlier.map((id) => rows.find((r) => r.id === id)).filter((j): j is Job => j !== undefined) };
    }
    const jobs: Job[] = [];
    for (const [i, p] of prepared.entries()) jobs.push(await enqueue(em, deps, kind, p, s.inputs[i]!.options));
    if (key) await recordKey(em, key.scope, key.key, jobs.map((j) => j.id));
    await em.query(`SELECT pg_notify('${Channel.jobs}', '')`);
    return { prepared, jobs };
  });
  // After the commit: workers are already taking the jobs while this is worked out.
  return { jobs, estimatedTotalSeconds: await kind.estimateSeconds(deps.ds.manager, prepared.map((p) => p.params)) };
}

async function enqueue(em: EntityManager, deps: SubmitDeps, kind: KindDefinition, p: Prepared<Record<string, unknown>>, options: JobOptions): Promise<Job> {
  const priority = options.priority ?? 0;
  const [row] = await em.query(
    `WITH j AS (
       INSERT INTO jobs (id, kind, queue, status, current_step, params, affinity, priority, deadline_at)
       VALUES ($1, $2, $3, 'PENDING', '${QUEUED}', $4, $8, $5, now() + make_interval(secs => $6))
       RETURNING *
     ), m AS (
       INSERT INTO job_models (job_id, role, model_id) SELECT j.id, r.role, r.model_id FROM j, jsonb_to_recordset($7) AS r(role text, model_id uuid)
     )
     SELECT * FROM j`,
    [crypto.randomUUID(), kind.name, p.queue, JSON.stringify(p.params), priority, options.deadlineSeconds ?? null, JSON.stringify(p.models.map((m) => ({ role: m.role, model_id: m.modelId }))), p.affinity ?? null],
  );
  const job = entityFromRow(em, JobEntity, row);
  await deps.onQueued?.(em, job, options);
  const event = await appendEvent(em, job.id, { step: QUEUED, status: 'PENDING', attempt: 0, progress: 0, message: 'Queued' });
  const data: JobData = { jobId: job.id };
  await deps.boss.send(p.queue, data, {
    ...deps.jobPolicy(kind),
    id: job.id,
    priority,
    ...(p.affinity ? { group: { id: p.affinity } } : {}),
    db: inTransaction(em),
  });
  return { ...job, eventSeq: event!.seq };
}
