/**
 * Postgres NOTIFY channels between Kiln processes. Payloads are small hints (ids, cursors);
 * receivers read the rows they name.
 */
export const Channel = {
  /** A generation event was appended: `{"g": generationId, "s": seq, "st": status}`. */
  events: 'kiln_events',
  /** A generation was deleted: its id. Streams watching it end. */
  deleted: 'kiln_deleted',
  /** Cancellation was requested for a running generation: its id. */
  cancel: 'kiln_cancel',
  /** A job was queued: idle workers fetch at once instead of at their next poll. */
  jobs: 'kiln_jobs',
} as const;
export type Channel = (typeof Channel)[keyof typeof Channel];

export interface EventHint {
  g: string;
  s: number;
  st: string;
}
