import fs from 'node:fs';
import { CircuitBreaker } from './circuit/breaker.js';
import type { AddressInfo } from 'node:net';
import type { PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import type { Config } from './config.js';
import { expireDatasetUploads } from './datasets/dataset-expiry.js';
import { openDatabase } from './db/data-source.js';
import { startEmbeddedPostgres } from './db/embedded-postgres.js';
import { PgListener } from './events/pg-listener.js';
import { Health } from './health/health.js';
import type { KindDefinition } from './jobs/kind.js';
import { moveLegacyJobs } from './jobs/legacy-queue.js';
import { removeLostFiles } from './jobs/lost-files.js';
import { jobPolicy, startQueue } from './jobs/queue.js';
import { Reconciler } from './jobs/reconciler.js';
import { pruneWorkers } from './jobs/workers.js';
import { KINDS } from './kinds/registry.js';
import { sweepTrainingFiles } from './kinds/training/file-sweep.js';
import { removeStaleAttemptFolders } from './kinds/training/work-folders.js';
import { RateLimiter } from './limits/rate-limiter.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics/metrics.js';
import { registerBuiltinModel } from './models/builtin.js';
import { registerBuiltinMusicModel } from './models/builtin-music.js';
import { expireUploads } from './models/uploads.js';
import { startApi } from './server/api.js';
import { listen } from './server/listen.js';
import { createOpsServer } from './server/ops.js';
import type { Yoga } from './server/yoga.js';
import { BreakerStorage } from './storage/breaker-storage.js';
import { LocalStorage } from './storage/local.js';
import { isStorageOutage } from './storage/outage.js';
import { S3Storage } from './storage/s3.js';
import type { Storage } from './storage/storage.js';
import type { Shared } from './shared.js';
import { loadUrlSecret } from './storage/url-secret.js';
import { UrlSigner } from './storage/url-signer.js';
import { pruneDeliveries } from './webhooks/prune.js';
import { startWebhooks } from './webhooks/start.js';
import { startWorker } from './worker/start.js';
import type { Worker } from './worker/worker.js';

export const VERSION: string = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

export interface Kiln {
  /** Where the process listens: the API, or a worker's health and metrics. */
  url: string | undefined;
  ds: DataSource;
  boss: PgBoss;
  storage: Storage;
  yoga: Yoga | undefined;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** The kinds of work it runs: Kiln's own by default (tests add kinds of their own). */
  kinds?: readonly KindDefinition[];
}

/**
 * Starts the parts of Kiln the role asks for, on one shared database and storage: the API
 * (HTTP + WebSocket), the worker, or both. `stop` closes them in the reverse order.
 */
export async function startKiln(config: Config, log: Logger, options: StartOptions = {}): Promise<Kiln> {
  const kinds = options.kinds ?? KINDS;
  const closers: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const close of closers.reverse()) {
      await close().catch((err) => log.error({ err }, 'error while stopping'));
    }
  };
  try {
    let url = config.database.url;
    if (!url) {
      const pg = await startEmbeddedPostgres({ dir: config.database.embeddedDir, port: config.database.embeddedPort, log });
      closers.push(() => pg.stop());
      url = await pg.url('kiln');
    }
    const ds = await openDatabase({ url, poolMax: config.database.poolMax, applicationName: `kiln-${config.role}` });
    closers.push(() => ds.destroy());

    const signer = new UrlSigner(await loadUrlSecret(config.urls.secret, config.dataDir), config.urls.ttlSeconds);
    const storage = createStorage(config, signer);
    closers.push(async () => storage.close());
    const boss = await startQueue({
      url,
      applicationName: `kiln-${config.role}-queue`,
      poolMax: config.worker.concurrency + 4,
      queues: kinds.flatMap((k) => k.queues),
      log,
    });
    closers.push(() => boss.stop({ graceful: false, close: true }));
    await registerBuiltinModel(ds, storage);
    await registerBuiltinMusicModel(ds, storage);

    const listener = new PgListener(url, log);
    await listener.start();
    closers.push(() => listener.stop());

    let worker: Worker | undefined;
    let subscriptions = () => 0;
    const metrics = new Metrics(ds, () => subscriptions());
    metrics.watchCircuit(storage.circuit);
    const rateLimiter = new RateLimiter(ds, config.rateLimit, () => metrics.rateLimited.inc());
    const health = new Health({
      ds,
      storage,
      storageCircuit: storage.circuit,
      listener,
      version: VERSION,
      role: config.role,
      disks: config.role === 'api' ? [config.dataDir] : [config.dataDir, config.models.cacheDir],
      minFreeDiskBytes: config.models.minFreeDiskBytes,
      queueStallSeconds: config.health.queueStallSeconds,
      ...(config.role !== 'api' ? { providers: () => worker?.providers, requestedProviders: config.inference.executionProviders } : {}),
    });
    const defaults = { softTimeoutSeconds: config.jobs.softTimeoutSeconds, hardTimeoutSeconds: config.jobs.hardTimeoutSeconds };
    const policyOf = (kind: KindDefinition) =>
      jobPolicy({
        maxRetries: config.jobs.maxRetries,
        retryDelayMs: config.jobs.retryDelayMs,
        // A backstop behind the runner's own hard limit, for a worker process that hangs whole.
        jobTimeoutSeconds: (kind.timeouts?.(defaults, config) ?? defaults).hardTimeoutSeconds + 60,
        heartbeatSeconds: config.worker.heartbeatSeconds,
      });
    const shared: Shared = { config, log, ds, boss, storage, signer, listener, health, metrics, rateLimiter, kinds, jobPolicy: policyOf, subscriptions: () => subscriptions() };

    const reconciler = new Reconciler(ds, boss, log.child({ component: 'reconciler' }), {
      intervalMs: config.jobs.reconcileIntervalMs,
      graceSeconds: 2,
      onLostRuns: removeLostFiles(storage, log),
      housekeeping: [
        () => expireUploads(ds, storage, log),
        () => rateLimiter.prune(),
        () => pruneWorkers(ds),
        () => moveLegacyJobs(ds, boss, kinds, policyOf, log),
        () => pruneDeliveries(ds, config.webhooks.logRetentionDays),
        // What the attempts of the kinds this worker runs left on its host.
        ...(config.role === 'api' ? [] : kinds.filter((k) => k.housekeeping && (config.worker.kinds ?? [k.name]).includes(k.name)))
          .map((k) => () => k.housekeeping!({ ds, storage, config, log: log.child({ kind: k.name }) })),
        () => expireDatasetUploads({ ds, storage, log }, config.fileRetentionMs),
        () => sweepTrainingFiles({ ds, storage, log }, config.fileRetentionMs),
        ...(config.role !== 'api' ? [() => removeStaleAttemptFolders(ds, config.training.workDir, log)] : []),
      ],
    });
    await reconciler.start();
    closers.push(() => reconciler.stop());

    let listening: { url: string; yoga?: Yoga } | undefined;
    if (config.role !== 'worker') {
      const api = await startApi(shared);
      closers.push(api.close);
      subscriptions = api.subscriptions;
      listening = api;
      log.info({ url: `${api.url}/graphql`, role: config.role }, 'Kiln is listening');
    }
    // Before the worker, so that it stops after it: what the worker's last jobs did still goes out.
    const webhooks = await startWebhooks(shared, {
      baseUrl: () => config.http.publicUrl ?? listening?.url ?? `http://${config.http.host}:${config.http.port}`,
      userAgent: `Kiln/${VERSION} (webhooks)`,
    });
    closers.push(webhooks.close);
    if (config.role !== 'api') {
      const started = await startWorker(shared);
      closers.push(started.close);
      worker = started.worker;
      log.info({ concurrency: config.worker.concurrency, providers: worker.providers?.usable }, 'worker started');
    }
    if (config.role === 'worker') {
      // A worker-only process answers health checks and metrics scrapes on its own port.
      const server = createOpsServer({ health, metrics });
      await listen(server, config.http.port, config.http.host);
      closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
      listening = { url: `http://${config.http.host}:${(server.address() as AddressInfo).port}` };
      log.info({ url: listening.url }, 'health and metrics are served');
    }
    return { url: listening?.url, ds, boss, storage, yoga: listening?.yoga, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The configured store, behind a circuit breaker of its own. */
function createStorage(config: Config, signer: UrlSigner): BreakerStorage {
  return new BreakerStorage(storageDriver(config, signer), new CircuitBreaker('storage', { ...config.breaker, isOutage: isStorageOutage }));
}

function storageDriver(config: Config, signer: UrlSigner): Storage {
  if (config.storage.kind === 'local') return new LocalStorage(config.storage.dir, signer);
  return new S3Storage({
    bucket: config.storage.bucket,
    region: config.storage.region,
    endpoint: config.storage.endpoint,
    publicEndpoint: config.storage.publicEndpoint,
    forcePathStyle: config.storage.forcePathStyle,
    keyPrefix: config.storage.prefix,
    urlTtlSeconds: config.urls.ttlSeconds,
  });
}
