import type { EventEmitter } from 'node:events';
import { DataSource } from 'typeorm';
import { migrations } from '../../migrations/index.js';
import { GenerationAttemptEntity } from './entities/generation-attempt.js';
import { GenerationEventEntity } from './entities/generation-event.js';
import { GenerationEntity } from './entities/generation.js';
import { IdempotencyKeyEntity } from './entities/idempotency-key.js';
import { ImageEntity } from './entities/image.js';
import { ModelUploadEntity } from './entities/model-upload.js';
import { RateLimitBucketEntity } from './entities/rate-limit-bucket.js';
import { ModelEntity } from './entities/model.js';

export const entities = [ModelEntity, GenerationEntity, GenerationEventEntity, ImageEntity, GenerationAttemptEntity, IdempotencyKeyEntity, ModelUploadEntity, RateLimitBucketEntity];

export interface DataSourceOptions {
  url: string;
  poolMax: number;
  applicationName: string;
}

/** The TypeORM data source over pg. The schema comes from migrations only, never `synchronize`. */
export function createDataSource({ url, poolMax, applicationName }: DataSourceOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    entities,
    migrations,
    migrationsTableName: 'kiln_migrations',
    migrationsTransactionMode: 'all',
    synchronize: false,
    uuidExtension: 'pgcrypto',
    applicationName,
    // pg.Pool waits forever for a connection by default; a dead database must surface as an error.
    connectTimeoutMS: 10_000,
    extra: {
      max: poolMax,
      idleTimeoutMillis: 30_000,
      // pg-pool stops listening for a new client's errors as it hands it over; TypeORM starts a
      // microtask later. A server that shuts down in between (57P01) would make that error
      // uncaught and end the process: every client keeps a listener of its own. The pool and
      // TypeORM still see each error and drop the connection.
      onConnect: (client: EventEmitter) => void client.on('error', () => {}),
    },
  });
}

/** Connects and applies pending migrations; an advisory lock keeps concurrent starts apart. */
export async function openDatabase(options: DataSourceOptions): Promise<DataSource> {
  const ds = createDataSource(options);
  await ds.initialize();
  try {
    await migrateUnderLock(ds);
  } catch (err) {
    await ds.destroy();
    throw err;
  }
  return ds;
}

async function migrateUnderLock(ds: DataSource) {
  const runner = ds.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock(hashtext($1))', ['kiln:migrations']);
    try {
      await ds.runMigrations({ transaction: 'all' });
    } finally {
      await runner.query('SELECT pg_advisory_unlock(hashtext($1))', ['kiln:migrations']);
    }
  } finally {
    await runner.release();
  }
}
