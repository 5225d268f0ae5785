import { EntitySchema } from 'typeorm';
import type { GenerationStatus, PipelineStep } from './generation.js';

/** One step of a generation's pipeline, as every watcher sees it; `seq` is its cursor. */
export interface GenerationEvent {
  generationId: string;
  seq: number;
  attempt: number;
  step: PipelineStep;
  status: GenerationStatus;
  stepIndex: number | null;
  stepCount: number | null;
  progress: number;
  message: string | null;
  etaSeconds: number | null;
  preview: string | null;
  at: Date;
}

export const GenerationEventEntity = new EntitySchema<GenerationEvent>({
  name: 'GenerationEvent',
  tableName: 'generation_events',
  columns: {
    generationId: { type: 'uuid', name: 'generation_id', primary: true },
    seq: { type: 'int', primary: true },
    attempt: { type: 'int' },
    step: { type: 'text' },
    status: { type: 'text' },
    stepIndex: { type: 'int', name: 'step_index', nullable: true },
    stepCount: { type: 'int', name: 'step_count', nullable: true },
    progress: { type: 'double precision' },
    message: { type: 'text', nullable: true },
    etaSeconds: { type: 'double precision', name: 'eta_seconds', nullable: true },
    preview: { type: 'text', nullable: true },
    at: { type: 'timestamptz', default: () => 'now()' },
  },
  foreignKeys: [
    { target: 'Generation', columnNames: ['generationId'], referencedColumnNames: ['id'], onDelete: 'CASCADE', name: 'generation_events_generation_fk' },
  ],
});
