import DataLoader from 'dataloader';
import { type DataSource, In } from 'typeorm';
import { GenerationAttemptEntity } from '../db/entities/generation-attempt.js';
import { GenerationEntity } from '../db/entities/generation.js';
import { ImageEntity } from '../db/entities/image.js';
import { ModelEntity } from '../db/entities/model.js';
import type { Loaders } from './context.js';

/** One query per kind of relation per request, however many rows ask for it. */
export function createLoaders(ds: DataSource): Loaders {
  return {
    model: new DataLoader(async (ids) => {
      const rows = await ds.manager.findBy(ModelEntity, { id: In([...ids]) });
      return ids.map((id) => rows.find((r) => r.id === id));
    }),
    generation: new DataLoader(async (ids) => {
      const rows = await ds.manager.findBy(GenerationEntity, { id: In([...ids]) });
      return ids.map((id) => rows.find((r) => r.id === id));
    }),
    attempts: new DataLoader(async (generationIds) => {
      const rows = await ds.manager.find(GenerationAttemptEntity, { where: { generationId: In([...generationIds]) }, order: { lease: 'ASC' } });
      return generationIds.map((id) => rows.filter((r) => r.generationId === id));
    }),
    images: new DataLoader(async (generationIds) => {
      const rows = await ds.manager.find(ImageEntity, { where: { generationId: In([...generationIds]) }, order: { index: 'ASC' } });
      return generationIds.map((id) => rows.filter((r) => r.generationId === id));
    }),
  };
}
