/**
 * Writes a migration with the SQL that brings the migrated schema in line with the entities:
 * `npm run migration:generate -- <Name>`. Runs against a throwaway embedded Postgres.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../log.js';
import { createDataSource } from './data-source.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import { pendingSchemaChanges } from './schema-drift.js';

const name = process.argv[2];
if (!name || !/^[A-Z][A-Za-z0-9]*$/.test(name)) {
  console.error('usage: npm run migration:generate -- <PascalCaseName>');
  process.exit(2);
}
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-migrate-'));
await fs.chmod(dir, 0o755);
const pg = await startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: 54400 + (process.pid % 500), log: createLogger('warn') });
try {
  const ds = createDataSource({ url: await pg.url('kiln'), poolMax: 2, applicationName: 'kiln-migrate' });
  await ds.initialize();
  await ds.runMigrations();
  const { up, down } = await pendingSchemaChanges(ds);
  await ds.destroy();
  if (up.length === 0) {
    console.log('The migrations already match the entities.');
  } else {
    const stamp = Date.now();
    const file = path.resolve('migrations', `${stamp}-${name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase()}.ts`);
    const q = (sql: string) => `    await runner.query(${JSON.stringify(sql)});`;
    await fs.writeFile(
      file,
      `import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ${name}${stamp} implements MigrationInterface {
  name = '${name}${stamp}';

  async up(runner: QueryRunner): Promise<void> {
${up.map(q).join('\n')}
  }

  async down(runner: QueryRunner): Promise<void> {
${down.map(q).join('\n')}
  }
}
`,
    );
    console.log(`Wrote ${path.relative(process.cwd(), file)}; add it to migrations/index.ts.`);
  }
} finally {
  await pg.stop();
  await fs.rm(dir, { recursive: true, force: true });
}
