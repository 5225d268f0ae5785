import { EntitySchema } from 'typeorm';
import { bigintNumber, createdAt } from './columns.js';

export interface Image {
  id: string;
  generationId: string;
  index: number;
  storageKey: string;
  width: number;
  height: number;
  bytes: number;
  sha256: string;
  seed: number;
  mimeType: string;
  createdAt: Date;
}

export const ImageEntity = new EntitySchema<Image>({
  name: 'Image',
  tableName: 'images',
  columns: {
    id: { type: 'uuid', primary: true, generated: 'uuid' },
    generationId: { type: 'uuid', name: 'generation_id' },
    index: { type: 'int' },
    storageKey: { type: 'text', name: 'storage_key' },
    width: { type: 'int' },
    height: { type: 'int' },
    bytes: { type: 'int' },
    sha256: { type: 'text' },
    seed: { ...bigintNumber },
    mimeType: { type: 'text', name: 'mime_type' },
    createdAt,
  },
  uniques: [{ name: 'images_generation_index', columns: ['generationId', 'index'] }],
  foreignKeys: [
    { target: 'Generation', columnNames: ['generationId'], referencedColumnNames: ['id'], onDelete: 'CASCADE', name: 'images_generation_fk' },
  ],
});
