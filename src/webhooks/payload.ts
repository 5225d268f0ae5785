import type { DataSource } from 'typeorm';
import { type Job, JobEntity } from '../db/entities/job.js';
import type { JobEvent } from '../db/entities/job-event.js';
import { JobOutputEntity } from '../db/entities/job-output.js';
import { entityFromRow } from '../db/sql.js';
import { eventFromRow } from '../events/event-log.js';
import type { Storage } from '../storage/storage.js';

/** Bumped when a field changes meaning or goes away; new fields do not bump it. */
export const PAYLOAD_VERSION = 1;

/**
 * The body of a delivery: `{ type, version, timestamp, data: { job, event } }`. `data.job` is
 * the job as the API returns it when the delivery is sent (its outputs with fresh signed links),
 * `data.event` the event the delivery tells of, and `timestamp` when that happened. Undefined
 * when the job is gone.
 */
export async function webhookBody(ds: DataSource, storage: Storage, baseUrl: string, d: { jobId: string; event: string; eventSeq: number }): Promise<string | undefined> {
  const [row] = await ds.query('SELECT j.*, row_to_json(e) AS event FROM jobs j JOIN job_events e ON e.job_id = j.id AND e.seq = $2 WHERE j.id = $1', [d.jobId, d.eventSeq]);
  if (!row) return undefined;
  const job = entityFromRow(ds, JobEntity, row);
  // row_to_json gives timestamps as text.
  const event = eventFromRow({ ...row.event, at: new Date(row.event.at) });
  // Only a completed job has outputs to show.
  const outputs = job.status === 'COMPLETED' ? await ds.manager.find(JobOutputEntity, { where: { jobId: job.id }, order: { index: 'ASC' } }) : [];
  return JSON.stringify({
    type: `job.${d.event.toLowerCase()}`,
    version: PAYLOAD_VERSION,
    timestamp: event.at.toISOString(),
    data: {
      job: {
        ...jobFields(job),
        outputs: await Promise.all(
          outputs.map(async (o) => ({
            index: o.index,
            mediaType: o.mediaType,
            url: await storage.signedUrl(o.storageKey, { baseUrl }),
            mimeType: o.mimeType,
            bytes: o.bytes,
            sha256: o.sha256,
            ...o.metadata,
          })),
        ),
      },
      event: eventFields(event),
    },
  });
}

/** The Job interface's fields, named as in the schema. */
function jobFields(j: Job) {
  return {
    id: j.id,
    kind: j.kind,
    status: j.status,
    currentStep: j.currentStep,
    progress: j.progress,
    priority: j.priority,
    retryCount: j.retryCount,
    cancelRequested: j.cancelRequestedAt !== null,
    deadlineAt: j.deadlineAt,
    params: j.params,
    error: j.errorCode ? { code: j.errorCode, message: j.errorMessage ?? '', retryable: j.errorRetryable ?? false } : null,
    timing: j.timing,
    createdAt: j.createdAt,
    startedAt: j.startedAt,
    completedAt: j.completedAt,
  };
}

/** GenerationEvent's fields but the preview image, which would make every PROGRESS body large. */
function eventFields(e: JobEvent) {
  return {
    cursor: String(e.seq),
    attempt: e.attempt,
    step: e.step,
    status: e.status,
    stepIndex: e.stepIndex,
    stepCount: e.stepCount,
    progress: e.progress,
    message: e.message,
    etaSeconds: e.etaSeconds,
    detail: e.detail,
    at: e.at,
  };
}
