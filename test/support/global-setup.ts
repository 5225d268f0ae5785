/**
 * One embedded Postgres for the whole test run. A template database is migrated once (Kiln's
 * migrations and pg-boss's schema); each test file copies it into a fresh database.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PgBoss } from 'pg-boss';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/db/data-source.js';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { createLogger } from '../../src/log.js';
import { TEMPLATE_DATABASE } from './database.js';
import { freePort } from './processes.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Connection URL of the test server's `postgres` database, for creating databases. */
    pgAdminUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-test-pg-'));
  await fs.chmod(dir, 0o755);
  const port = await freePort();
  const pg = await startEmbeddedPostgres({
    dir: path.join(dir, 'data'),
    port,
    log: createLogger('warn'),
    // Durability is not what these tests check; this makes each commit a lot cheaper.
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
  });
  const templateUrl = await pg.url(TEMPLATE_DATABASE);
  const ds = await openDatabase({ url: templateUrl, poolMax: 2, applicationName: 'kiln-test-setup' });
  await ds.destroy();
  const boss = new PgBoss({ connectionString: templateUrl, supervise: false, schedule: false });
  await boss.start();
  await boss.stop({ graceful: false, close: true });
  project.provide('pgAdminUrl', await pg.url('postgres'));

  return async () => {
    await pg.stop();
    await fs.rm(dir, { recursive: true, force: true });
  };
}
