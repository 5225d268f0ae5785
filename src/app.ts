import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import type { Config } from './config.js';
import { openDatabase } from './db/data-source.js';
import { type RunningPostgres, startEmbeddedPostgres } from './db/embedded-postgres.js';
import { EventHub } from './events/event-hub.js';
import { PgListener } from './events/pg-listener.js';
import { jobPolicy, startQueue } from './jobs/queue.js';
import { Reconciler } from './jobs/reconciler.js';
import type { Logger } from './log.js';
import { registerBuiltinModel } from './models/builtin.js';
import { ModelCache } from './models/model-cache.js';
import { buildYoga, type Yoga } from './server/yoga.js';
import { attachWebSocket } from './server/ws.js';
import { LocalStorage } from './storage/local.js';
import { S3Storage } from './storage/s3.js';
import type { Storage } from './storage/storage.js';
import { loadUrlSecret } from './storage/url-secret.js';
import { UrlSigner } from './storage/url-signer.js';
import { Worker } from './worker/worker.js';

export interface Kiln {
  /** Where the API listens (undefined for a worker-only process). */
  url: string | undefined;
  ds: DataSource;
  boss: PgBoss;
  storage: Storage;
  yoga: Yoga | undefined;
  stop(): Promise<void>;
}

/**
 * Starts the parts of Kiln the role asks for, on one shared database and storage: the API
 * (HTTP + WebSocket), the worker, or both. `stop` closes them in the reverse order.
 */
export async function startKiln(config: Config, log: Logger): Promise<Kiln> {
  const closers: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const close of closers.reverse()) {
      await close().catch((err) => log.error({ err }, 'error while stopping'));
    }
  };
  try {
    let url = config.database.url;
    if (!url) {
      const pg: RunningPostgres = await startEmbeddedPostgres({ dir: config.database.embeddedDir, port: config.database.embeddedPort, log });
      closers.push(() => pg.stop());
      url = await pg.url('kiln');
    }
    const ds = await openDatabase({ url, poolMax: config.database.poolMax, applicationName: `kiln-${config.role}` });
    closers.push(() => ds.destroy());

    const signer = new UrlSigner(await loadUrlSecret(config.urls.secret, config.dataDir), config.urls.ttlSeconds);
    const storage: Storage =
      config.storage.kind === 's3'
        ? new S3Storage({
            bucket: config.storage.bucket,
            region: config.storage.region,
            endpoint: config.storage.endpoint,
            publicEndpoint: config.storage.publicEndpoint,
            forcePathStyle: config.storage.forcePathStyle,
            keyPrefix: config.storage.prefix,
            urlTtlSeconds: config.urls.ttlSeconds,
          })
        : new LocalStorage(config.storage.dir, signer);
    closers.push(async () => storage.close());
    const boss = await startQueue({ url, applicationName: `kiln-${config.role}-queue`, poolMax: config.worker.concurrency + 4, log });
    closers.push(() => boss.stop({ graceful: false, close: true }));
    await registerBuiltinModel(ds, storage);
    const reconciler = new Reconciler(ds, boss, storage, log.child({ component: 'reconciler' }), {
      intervalMs: config.jobs.reconcileIntervalMs,
      graceSeconds: 2,
    });
    await reconciler.start();
    closers.push(() => reconciler.stop());

    const listener = new PgListener(url, log);
    await listener.start();
    closers.push(() => listener.stop());

    let api: { url: string; yoga: Yoga } | undefined;
    if (config.role !== 'worker') {
      const hub = new EventHub(ds, listener, log);
      const policy = jobPolicy({
        maxRetries: config.jobs.maxRetries,
        retryDelayMs: config.jobs.retryDelayMs,
        // A backstop behind the runner's own hard limit, for a worker process that hangs whole.
        jobTimeoutSeconds: config.jobs.hardTimeoutSeconds + 60,
        heartbeatSeconds: config.worker.heartbeatSeconds,
      });
      const yoga = buildYoga({ config, ds, boss, jobPolicy: policy, storage, hub, log }, signer);
      const server = createServer(yoga);
      const ws = attachWebSocket(server, yoga);
      await listen(server, config.http.port, config.http.host);
      closers.push(async () => {
        await ws.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      });
      const address = server.address() as AddressInfo;
      api = { url: `http://${config.http.host}:${address.port}`, yoga };
      log.info({ url: `${api.url}/graphql`, role: config.role }, 'Kiln is listening');
    }

    if (config.role !== 'api') {
      const modelCache = new ModelCache({
        dir: config.models.cacheDir,
        maxBytes: config.models.cacheMaxBytes,
        minFreeBytes: config.models.minFreeDiskBytes,
        storage,
        log: log.child({ component: 'model-cache' }),
      });
      await modelCache.start();
      closers.push(() => modelCache.stop());
      const worker = new Worker(
        {
          ds,
          boss,
          storage,
          log: log.child({ component: 'worker' }),
          modelDir: (model, signal) => modelCache.acquire(model, { signal }),
          leaseSeconds: config.worker.heartbeatSeconds,
          softTimeoutMs: config.jobs.softTimeoutSeconds * 1000,
          hardTimeoutMs: config.jobs.hardTimeoutSeconds * 1000,
          cancelGraceMs: 10_000,
        },
        listener,
        {
          concurrency: config.worker.concurrency,
          pollMs: config.worker.pollMs,
          runner: {
            executionProviders: config.inference.executionProviders,
            sessionCacheBytes: config.inference.sessionCacheBytes,
            keepAliveMs: config.inference.keepAliveMs,
            previewIntervalMs: config.inference.previewIntervalMs,
          },
        },
      );
      await worker.start();
      closers.push(() => worker.stop(config.worker.shutdownGraceMs));
      log.info({ concurrency: config.worker.concurrency }, 'worker started');
    }
    return { url: api?.url, ds, boss, storage, yoga: api?.yoga, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
