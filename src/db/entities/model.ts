import { EntitySchema } from 'typeorm';
import { bigintNumber, createdAt } from './columns.js';

export type ModelKind = 'BASE' | 'LORA';

/** One file of a model as stored: its path inside the model's folder. */
export interface ModelFile {
  path: string;
  sizeBytes: number;
  sha256: string;
}

/** How Kiln trained a LoRA adapter. */
export interface TrainedFrom {
  jobId: string;
  datasetId: string;
  datasetName: string;
  /** The dataset's hash, as the adapter's `kiln.dataset_sha256` has it (the dataset may be deleted since). */
  datasetSha256: string;
  trainer: string;
  /** The training's parameters as it ran with them. */
  parameters: Record<string, unknown>;
  /** The adapter file's safetensors metadata (the trainer's `ss_*` and Kiln's `kiln.*`). */
  metadata: Record<string, string>;
}

export interface Model {
  id: string;
  name: string;
  kind: ModelKind;
  pipeline: string;
  /** What its pipeline makes (`image`, `audio`): each modality has its own default model. */
  modality: 'image' | 'audio';
  baseModelId: string | null;
  triggerWord: string | null;
  /** Storage prefix under which the model's files live. */
  storageKey: string;
  files: ModelFile[];
  sizeBytes: number;
  /** Content hash: of the file for a single-file model, of the sorted file list for a folder. */
  sha256: string;
  /** The model a job of its modality uses when the input names none; one per modality. */
  isDefault: boolean;
  /** Shipped with Kiln (cannot be deleted). */
  builtin: boolean;
  /** Pipeline defaults for omitted inputs (steps, guidanceScale, width, height, scheduler). */
  defaults: Record<string, number | string>;
  /** For a LoRA adapter Kiln trained; null for one that was uploaded. */
  training: TrainedFrom | null;
  createdAt: Date;
  /** Deleted models keep their row (past jobs name them) but lose their files. */
  deletedAt: Date | null;
}

export const ModelEntity = new EntitySchema<Model>({
  name: 'Model',
  tableName: 'models',
  columns: {
    id: { type: 'uuid', primary: true, generated: 'uuid' },
    name: { type: 'text' },
    kind: { type: 'text' },
    pipeline: { type: 'text' },
    // Models from before audio models existed are all image models.
    modality: { type: 'text', default: 'image' },
    baseModelId: { type: 'uuid', name: 'base_model_id', nullable: true },
    triggerWord: { type: 'text', name: 'trigger_word', nullable: true },
    storageKey: { type: 'text', name: 'storage_key' },
    files: { type: 'jsonb' },
    sizeBytes: { ...bigintNumber, name: 'size_bytes' },
    sha256: { type: 'text' },
    isDefault: { type: 'boolean', name: 'is_default', default: false },
    builtin: { type: 'boolean', default: false },
    defaults: { type: 'jsonb', default: () => "'{}'" },
    training: { type: 'jsonb', nullable: true },
    createdAt,
    deletedAt: { type: 'timestamptz', name: 'deleted_at', nullable: true },
  },
  indices: [
    { name: 'models_sha256_key', columns: ['sha256'], unique: true, where: 'deleted_at IS NULL' },
    { name: 'models_one_default', columns: ['modality'], unique: true, where: 'is_default' },
    { name: 'models_kind_created', columns: ['kind', 'createdAt', 'id'] },
  ],
  foreignKeys: [{ target: 'Model', columnNames: ['baseModelId'], referencedColumnNames: ['id'], onDelete: 'RESTRICT', name: 'models_base_model_fk' }],
});
