import type { Logger } from '../log.js';
import { attemptKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import type { LostRunsHandler } from './attempt.js';

/**
 * Removes the folders of runs whose worker died, in the background: a worker killed while
 * saving leaves files nobody would remove. A failure only leaves wasted space, and is logged.
 */
export function removeLostFiles(storage: Storage, log: Logger): LostRunsHandler {
  return (jobId, leases) =>
    void Promise.all(leases.map((lease) => storage.deletePrefix(attemptKey(jobId, lease)))).catch((err: unknown) =>
      log.warn({ err, jobId, leases }, "could not remove the files of a lost worker's attempt"),
    );
}
