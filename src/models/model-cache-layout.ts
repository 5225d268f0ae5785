import path from 'node:path';

/**
 * Where the model cache keeps things under its folder:
 *
 * ```
 * <dir>/<sha256>/…          the model's files, at their paths in the model
 * <dir>/<sha256>.json       written last, once every file is verified: its presence makes the
 *                           folder a hit; its mtime is the model's last use
 * <dir>/.locks/<sha256>.lock  held while one process fetches or evicts that model
 * <dir>/.locks/cache.lock   held while making room (eviction) and while sweeping at start
 * <dir>/.in-use/<sha256>/<token>  one marker per holder of the model (host, pid)
 * <dir>/.trash/             what an eviction is removing
 * ```
 *
 * Downloads land beside their target as `<file>.<token>.kiln-partial` and are renamed into
 * place only once their sha256 matches.
 */
export class CacheLayout {
  readonly locks: string;
  readonly inUse: string;
  readonly trash: string;
  readonly cacheLock: string;

  constructor(readonly dir: string) {
    this.locks = path.join(dir, '.locks');
    this.inUse = path.join(dir, '.in-use');
    this.trash = path.join(dir, '.trash');
    this.cacheLock = path.join(this.locks, 'cache.lock');
  }

  modelDir(sha256: string) {
    return path.join(this.dir, sha256);
  }

  record(sha256: string) {
    return path.join(this.dir, `${sha256}.json`);
  }

  modelLock(sha256: string) {
    return path.join(this.locks, `${sha256}.lock`);
  }

  markers(sha256: string) {
    return path.join(this.inUse, sha256);
  }
}

export const PARTIAL_SUFFIX = '.kiln-partial';

export const SHA256 = /^[0-9a-f]{64}$/;
