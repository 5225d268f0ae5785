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
});
