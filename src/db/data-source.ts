import type { EventEmitter } from 'node:events';
import { DataSource } from 'typeorm';
import { migrations } from '../../migrations/index.js';
import { DatasetEntity } from './entities/dataset.js';
import { IdempotencyKeyEntity } from './entities/idempotency-key.js';
import { JobWebhookEntity } from './entities/job-webhook.js';
import { JobWebhookSecretEntity } from './entities/job-webhook-secret.js';
import { JobAttemptEntity } from './entities/job-attempt.js';
import { JobEventEntity } from './entities/job-event.js';
import { JobModelEntity } from './entities/job-model.js';
import { JobOutputEntity } from './entities/job-output.js';
import { JobEntity } from './entities/job.js';
import { ModelUploadEntity } from './entities/model-upload.js';
import { ModelEntity } from './entities/model.js';
import { RateLimitBucketEntity } from './entities/rate-limit-bucket.js';
import { WebhookAttemptEntity } from './entities/webhook-attempt.js';
import { WebhookDeliveryEntity } from './entities/webhook-delivery.js';
import { WebhookEndpointEntity } from './entities/webhook-endpoint.js';
import { TrainingSweepEntity } from './entities/training-sweep.js';
import { WorkerEntity } from './entities/worker.js';

export const entities = [
  ModelEntity,
  JobEntity,
  JobModelEntity,
  JobEventEntity,
  JobOutputEntity,
  JobAttemptEntity,
  IdempotencyKeyEntity,
  ModelUploadEntity,
  RateLimitBucketEntity,
  WorkerEntity,
  WebhookEndpointEntity,
  JobWebhookEntity,
  JobWebhookSecretEntity,
  WebhookDeliveryEntity,
  WebhookAttemptEntity,
  DatasetEntity,
  TrainingSweepEntity,
];

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
