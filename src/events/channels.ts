/**
 * Postgres NOTIFY channels between Kiln processes. Payloads are small hints (ids, cursors);
 * receivers read the rows they name, but for a job event's own row, which never changes once
 * written and travels with its hint when it is small.
 */
export const Channel = {
  /** A job event was appended: `{"j": jobId, "s": seq, "st": status, "k": kind, "e": the event's row, when small}`. */
  events: 'kiln_events',
  /** A job was deleted: its id. Streams watching it end. */
  deleted: 'kiln_deleted',
  /** Cancellation was requested for a running job: its id. */
  cancel: 'kiln_cancel',
  /** A job was queued: idle workers fetch at once instead of at their next poll. */
  jobs: 'kiln_jobs',
  /** Webhook deliveries were written (by the trigger on job_events) or asked again: dispatchers look. */
  webhooks: 'kiln_webhooks',
} as const;
export type Channel = (typeof Channel)[keyof typeof Channel];

export interface EventHint {
  j: string;
  s: number;
  st: string;
  k: string;
  /** The event's row (snake_case, as row_to_json makes it), unless it was too large to travel. */
  e?: Record<string, unknown> | null;
}
