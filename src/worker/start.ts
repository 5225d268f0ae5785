import { ConfigError } from '../config.js';
import { ModelCache } from '../models/model-cache.js';
import { runnablePipelines } from '../pipelines/catalog.js';
import type { Shared } from '../shared.js';
import { hostTrainers } from '../trainers/registry.js';
import { Worker } from './worker.js';

/** The worker: its model cache, its runner processes, and its fetch loops. */
export async function startWorker(shared: Shared) {
  const { config, ds, boss, storage, log, metrics, kinds } = shared;
  const unknown = config.worker.kinds?.filter((name) => !kinds.some((k) => k.name === name)) ?? [];
  if (unknown.length) throw new ConfigError(`Invalid setting KILN_WORKER_KINDS: no kind named ${unknown.join(', ')} (Kiln runs ${kinds.map((k) => k.name).join(', ')})`);
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
      config,
      ds,
      boss,
      storage,
      metrics,
      kinds,
      log: log.child({ component: 'worker' }),
      modelDir: (model, signal) => modelCache.acquire(model, { signal }),
      leaseSeconds: config.worker.heartbeatSeconds,
      timeouts: { softTimeoutSeconds: config.jobs.softTimeoutSeconds, hardTimeoutSeconds: config.jobs.hardTimeoutSeconds },
      cancelGraceMs: 10_000,
    },
    shared.listener,
    {
      concurrency: config.worker.concurrency,
      pollMs: config.worker.pollMs,
      kinds: config.worker.kinds ?? kinds.map((k) => k.name),
      affinityWaitSeconds: config.worker.affinityWaitSeconds,
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
    await worker.start((providers) => ({
      pipelines: runnablePipelines(providers).filter((p) => !config.worker.pipelines || config.worker.pipelines.includes(p)),
      trainers: hostTrainers(config.trainers).map((t) => t.name),
    }));
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
