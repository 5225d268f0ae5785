import { EntitySchema } from 'typeorm';
import { bigintNumber, createdAt } from './columns.js';

/** UPLOADING: files may still be added; CHECKING: being checked and made canonical; READY: trainings may use it. */
export type DatasetStatus = 'UPLOADING' | 'CHECKING' | 'READY';

/** One picture of a ready dataset, as stored under its canonical name. */
export interface DatasetImageRow {
  /** `001.png`; its caption, if any, is `001.txt` beside it. */
  file: string;
  /** Its name as sent (a path inside a zip). */
  name: string;
  width: number;
  height: number;
  sha256: string;
  caption: string;
}

/** A file announced for a direct upload; it is stored by its place in `files` (`dataset-uploads/<id>/<index>`). */
export interface DatasetUploadFile {
  name: string;
  sizeBytes: number;
}

/**
 * Captioned pictures to train on. Its canonical folder is `datasets/<id>/` (`001.png`,
 * `001.txt`, …, `manifest.json`); files sent by direct upload wait under
 * `dataset-uploads/<id>/` until the upload is completed and checked.
 */
export interface Dataset {
  id: string;
  name: string;
  status: DatasetStatus;
  /** When given at creation, every image was checked against it as the short side it must reach. */
  resolution: number | null;
  images: DatasetImageRow[];
  imageCount: number;
  /** Of its canonical files (0 until it is ready). */
  sizeBytes: number;
  /** The trainers' dataset hash (of its sorted sha256 and path list); null until it is ready. */
  sha256: string | null;
  uploadFiles: DatasetUploadFile[];
  createdAt: Date;
  readyAt: Date | null;
}

export const DatasetEntity = new EntitySchema<Dataset>({
  name: 'Dataset',
  tableName: 'datasets',
  columns: {
    id: { type: 'uuid', primary: true },
    name: { type: 'text' },
    status: { type: 'text' },
    resolution: { type: 'int', nullable: true },
    images: { type: 'jsonb', default: () => "'[]'" },
    imageCount: { type: 'int', name: 'image_count', default: 0 },
    sizeBytes: { ...bigintNumber, name: 'size_bytes', default: 0 },
    sha256: { type: 'text', nullable: true },
    uploadFiles: { type: 'jsonb', name: 'upload_files', default: () => "'[]'" },
    createdAt,
    readyAt: { type: 'timestamptz', name: 'ready_at', nullable: true },
  },
  indices: [
    { name: 'datasets_created', columns: ['createdAt', 'id'] },
    { name: 'datasets_unfinished', columns: ['createdAt'], where: "status <> 'READY'" },
  ],
  checks: [{ name: 'datasets_status_check', expression: `status IN ('UPLOADING','CHECKING','READY')` }],
});
