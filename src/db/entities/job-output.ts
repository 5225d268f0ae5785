import { EntitySchema } from 'typeorm';
import { bigintNumber, createdAt } from './columns.js';

/** The media types a job's outputs come in; each has its own fields in `metadata`. */
export type MediaType = 'image' | 'audio';

/** A file a job made (an image, a piece of audio), stored under the attempt that made it. */
export interface JobOutput {
  id: string;
  jobId: string;
  index: number;
  mediaType: MediaType;
  storageKey: string;
  mimeType: string;
  bytes: number;
  sha256: string;
  /** The media type's own fields: an image's width, height and seed; a sound's duration, rate, channels. */
  metadata: Record<string, unknown>;
  createdAt: Date;
}

export const JobOutputEntity = new EntitySchema<JobOutput>({
  name: 'JobOutput',
  tableName: 'job_outputs',
  columns: {
    id: { type: 'uuid', primary: true, generated: 'uuid' },
    jobId: { type: 'uuid', name: 'job_id' },
    index: { type: 'int' },
    mediaType: { type: 'text', name: 'media_type' },
    storageKey: { type: 'text', name: 'storage_key' },
    mimeType: { type: 'text', name: 'mime_type' },
    bytes: { ...bigintNumber },
    sha256: { type: 'text' },
    metadata: { type: 'jsonb', default: () => "'{}'" },
    createdAt,
  },
  uniques: [{ name: 'job_outputs_job_index', columns: ['jobId', 'index'] }],
  foreignKeys: [{ target: 'Job', columnNames: ['jobId'], referencedColumnNames: ['id'], onDelete: 'CASCADE', name: 'job_outputs_job_fk' }],
});
