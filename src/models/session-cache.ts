/** A loaded model of any modality: what it holds in memory, and how to let go of it. */
export interface Releasable {
  readonly sizeBytes: number;
  release(): Promise<void>;
}

interface Entry {
  key: string;
  pipeline: Releasable;
  users: number;
  lastUsed: number;
}

export interface SessionCacheOptions {
  /** Memory the cached models may hold together. */
  budgetBytes: number;
  /** A model unused for this long is released, so the accelerator can be shared. */
  keepAliveMs: number;
  onEvict?: (key: string, reason: 'budget' | 'idle') => void;
}

/**
 * Loaded models (ONNX sessions) kept between jobs, least recently used evicted first. Entries
 * in use are never evicted; one larger than the budget is still loaded, and released when done.
 */
export class SessionCache {
  private entries = new Map<string, Entry>();
  private loading = new Map<string, Promise<Releasable>>();
  private timer: NodeJS.Timeout;

  constructor(private readonly opts: SessionCacheOptions) {
    this.timer = setInterval(() => void this.releaseIdle(), Math.min(60_000, Math.max(1_000, opts.keepAliveMs / 4))).unref();
  }

  /** The pipeline for `key`, loading it on a miss; call `release` when the job is done with it. */
  async acquire<T extends Releasable>(key: string, load: () => Promise<T>): Promise<{ pipeline: T; cached: boolean; release: () => Promise<void> }> {
    let entry = this.entries.get(key);
    const cached = entry !== undefined;
    if (!entry) {
      let pending = this.loading.get(key);
      if (!pending) {
        pending = load().finally(() => this.loading.delete(key));
        this.loading.set(key, pending);
      }
      const pipeline = await pending;
      entry = this.entries.get(key) ?? { key, pipeline, users: 0, lastUsed: performance.now() };
      this.entries.set(key, entry);
      await this.evict(key);
    }
    const e = entry;
    e.users++;
    e.lastUsed = performance.now();
    return {
      // What `load` made for this key: every caller of a key loads the same kind of thing.
      pipeline: e.pipeline as T,
      cached,
      release: async () => {
        e.users--;
        e.lastUsed = performance.now();
        await this.evict();
      },
    };
  }

  get sizeBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.pipeline.sizeBytes;
    return n;
  }

  get keys(): string[] {
    return [...this.entries.keys()];
  }

  async clear(): Promise<void> {
    clearInterval(this.timer);
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => e.pipeline.release()));
  }

  /** Evicts idle entries (never `keep`), oldest first, until the cache fits its budget. */
  private async evict(keep?: string) {
    const idle = [...this.entries.values()].filter((e) => e.users === 0 && e.key !== keep).sort((a, b) => a.lastUsed - b.lastUsed);
    while (this.sizeBytes > this.opts.budgetBytes && idle.length) {
      const e = idle.shift()!;
      this.entries.delete(e.key);
      this.opts.onEvict?.(e.key, 'budget');
      await e.pipeline.release();
    }
  }

  private async releaseIdle() {
    const cutoff = performance.now() - this.opts.keepAliveMs;
    for (const e of [...this.entries.values()]) {
      if (e.users === 0 && e.lastUsed < cutoff) {
        this.entries.delete(e.key);
        this.opts.onEvict?.(e.key, 'idle');
        await e.pipeline.release();
      }
    }
  }
}
