import type { Shared } from '../app.js';
import { ModelCache } from '../models/model-cache.js';
import { Worker } from './worker.js';

/** The worker: its model cache, its runner processes, and its fetch loops. */
export async function startWorker(shared: Shared) {
  const { config, ds, boss, storage, log, metrics } = shared;
  const modelCache = new ModelCache({
    dir: config.models.cacheDir,
    maxBytes: config.models.cacheMaxBytes,
    minFreeBytes: config.models.minFreeDiskBytes,
    storage,
    log: log.child({ component: 'model-cache' }),
  });
  await modelCache.start();
  const worker = new Worker(
    {
      ds,
      boss,
      storage,
      metrics,
      log: log.child({ component: 'worker' }),
      modelDir: (model, signal) => modelCache.acquire(model, { signal }),
      leaseSeconds: config.worker.heartbeatSeconds,
      softTimeoutMs: config.jobs.softTimeoutSeconds * 1000,
      hardTimeoutMs: config.jobs.hardTimeoutSeconds * 1000,
      cancelGraceMs: 10_000,
    },
    shared.listener,
    {
      concurrency: config.worker.concurrency,
      pollMs: config.worker.pollMs,
      dependenciesUp: () => storage.available(),
      runner: {
        executionProviders: config.inference.executionProviders,
        sessionCacheBytes: config.inference.sessionCacheBytes,
        keepAliveMs: config.inference.keepAliveMs,
        previewIntervalMs: config.inference.previewIntervalMs,
      },
    },
  );
  try {
    await worker.start();
  } catch (err) {
    await modelCache.stop();
    throw err;
  }
  return {
    worker,
    async close() {
      await worker.stop(config.worker.shutdownGraceMs);
      await modelCache.stop();
    },
  };
}
