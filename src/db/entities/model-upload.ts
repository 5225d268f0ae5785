import { EntitySchema } from 'typeorm';
import { createdAt } from './columns.js';
import type { ModelKind } from './model.js';

/** A file the client announced and sends itself (a direct upload). */
export interface UploadedFile {
  /** Its path in the model's folder, checked by Kiln (e.g. `unet/model.onnx`). */
  path: string;
  sizeBytes: number;
}

/**
 * A model on its way in: its files go straight to storage under `models/<id>/`, and
 * `completeModelUpload` checks them and turns the upload into the model of the same id.
 */
export interface ModelUpload {
  id: string;
  name: string;
  kind: ModelKind;
  baseModelId: string | null;
  triggerWord: string | null;
  files: UploadedFile[];
  status: 'PENDING' | 'COMPLETED' | 'REFUSED';
  expiresAt: Date;
  createdAt: Date;
}

export const ModelUploadEntity = new EntitySchema<ModelUpload>({
  name: 'ModelUpload',
  tableName: 'model_uploads',
  columns: {
    id: { type: 'uuid', primary: true },
    name: { type: 'text' },
    kind: { type: 'text' },
    baseModelId: { type: 'uuid', name: 'base_model_id', nullable: true },
    triggerWord: { type: 'text', name: 'trigger_word', nullable: true },
    files: { type: 'jsonb', default: () => "'[]'" },
    status: { type: 'text', default: 'PENDING' },
    expiresAt: { type: 'timestamptz', name: 'expires_at' },
    createdAt,
  },
  indices: [{ name: 'model_uploads_pending_expiry', columns: ['expiresAt'], where: "status = 'PENDING'" }],
});
