import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataSource } from 'typeorm';
import { createDataSource } from '../../src/db/data-source.js';
import { pendingSchemaChanges } from '../../src/db/schema-drift.js';
import { migrations } from '../../migrations/index.js';
import { createTestDatabase } from '../support/database.js';

describe('migrations', () => {
  let ds: DataSource;
  beforeAll(async () => {
    ds = createDataSource({ url: await createTestDatabase(), poolMax: 2, applicationName: 'kiln-test' });
    await ds.initialize();
  });
  afterAll(() => ds?.destroy());

  it('leave nothing for TypeORM to change: the entities and the migrated schema agree', async () => {
    expect(await pendingSchemaChanges(ds)).toEqual({ up: [], down: [] });
  });

  it('undo cleanly, every one of them, and apply again', async () => {
    for (let i = 0; i < migrations.length; i++) await ds.undoLastMigration({ transaction: 'all' });
    const [{ tables }] = await ds.query(`SELECT count(*)::int AS tables FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'kiln_migrations'`);
    expect(tables).toBe(0);
    await ds.runMigrations({ transaction: 'all' });
    expect(await pendingSchemaChanges(ds)).toEqual({ up: [], down: [] });
  });

  it('carry the generations made before kinds over as image jobs, with their models, events, attempts and images', async () => {
    // Back to just before jobs came in kinds, undoing the later migrations first.
    const kinds = migrations.findIndex((m) => m.name === 'JobKinds1796185500000');
    for (let i = migrations.length; i > kinds; i--) await ds.undoLastMigration({ transaction: 'all' });
    const [{ id: modelId }] = await ds.query(
      `INSERT INTO models (name, kind, pipeline, storage_key, files, size_bytes, sha256) VALUES ('m', 'BASE', 'builtin', 'k', '[]', 0, 'abc') RETURNING id`,
    );
    const [{ id: loraId }] = await ds.query(
      `INSERT INTO models (name, kind, pipeline, base_model_id, storage_key, files, size_bytes, sha256) VALUES ('l', 'LORA', 'builtin', $1, 'k2', '[]', 0, 'def') RETURNING id`,
      [modelId],
    );
    const [{ id }] = await ds.query(
      `INSERT INTO generations (status, current_step, prompt, negative_prompt, model_id, lora_id, lora_weight, num_images, steps, guidance_scale, width, height, seed, scheduler, event_seq)
       VALUES ('COMPLETED', 'COMPLETED', 'a fox', 'blur', $1, $2, 0.8, 1, 8, 7.5, 256, 192, 42, 'euler', 1) RETURNING id`,
      [modelId, loraId],
    );
    await ds.query(`INSERT INTO generation_events (generation_id, seq, attempt, step, status, progress) VALUES ($1, 1, 1, 'COMPLETED', 'COMPLETED', 1)`, [id]);
    await ds.query(`INSERT INTO generation_attempts (generation_id, lease, attempt, worker, outcome) VALUES ($1, 1, 1, 'w', 'COMPLETED')`, [id]);
    await ds.query(`INSERT INTO images (generation_id, index, storage_key, width, height, bytes, sha256, seed, mime_type) VALUES ($1, 0, 'generations/x/1/0.png', 256, 192, 10, 'f', 42, 'image/png')`, [id]);
    await ds.runMigrations({ transaction: 'all' });

    const [job] = await ds.query('SELECT kind, queue, status, params FROM jobs WHERE id = $1', [id]);
    expect(job).toEqual({
      kind: 'image',
      queue: 'image.builtin',
      status: 'COMPLETED',
      params: { prompt: 'a fox', negativePrompt: 'blur', modelId, loraId, loraWeight: 0.8, numImages: 1, steps: 8, guidanceScale: 7.5, width: 256, height: 192, seed: 42, previews: true, scheduler: 'euler' },
    });
    expect(await ds.query('SELECT role, model_id FROM job_models WHERE job_id = $1 ORDER BY role', [id])).toEqual([
      { role: 'lora', model_id: loraId },
      { role: 'model', model_id: modelId },
    ]);
    expect(await ds.query('SELECT media_type, storage_key, metadata FROM job_outputs WHERE job_id = $1', [id])).toEqual([
      { media_type: 'image', storage_key: 'generations/x/1/0.png', metadata: { width: 256, height: 192, seed: 42 } },
    ]);
    expect(await ds.query('SELECT count(*)::int AS n FROM job_events WHERE job_id = $1', [id])).toEqual([{ n: 1 }]);
    expect(await ds.query('SELECT outcome FROM job_attempts WHERE job_id = $1', [id])).toEqual([{ outcome: 'COMPLETED' }]);
    // The models now in use by a job cannot be deleted from under it.
    await expect(ds.query('DELETE FROM models WHERE id = $1', [loraId])).rejects.toThrow(/job_models_model_fk/);
  });

  it('make every model from before an image model, and keep one default model per modality', async () => {
    // Back to just before models had a modality, undoing the later migrations first.
    const modality = migrations.findIndex((m) => m.name === 'ModelModality1796190756984');
    for (let i = migrations.length; i > modality; i--) await ds.undoLastMigration({ transaction: 'all' });
    const [{ id }] = await ds.query(`INSERT INTO models (name, kind, pipeline, storage_key, files, size_bytes, sha256, is_default) VALUES ('old', 'BASE', 'builtin', 'k3', '[]', 0, 'old', true) RETURNING id`);
    await ds.runMigrations({ transaction: 'all' });
    expect(await ds.query('SELECT modality, is_default FROM models WHERE id = $1', [id])).toEqual([{ modality: 'image', is_default: true }]);
    const insert = (sha: string, modality: string) =>
      ds.query(`INSERT INTO models (name, kind, pipeline, modality, storage_key, files, size_bytes, sha256, is_default) VALUES ($1, 'BASE', 'p', $2, $1, '[]', 0, $1, true)`, [sha, modality]);
    await insert('music', 'audio');
    await expect(insert('another image', 'image')).rejects.toThrow(/models_one_default/);
    await expect(insert('another music', 'audio')).rejects.toThrow(/models_one_default/);
  });
});
