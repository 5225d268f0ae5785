import type { Readable } from 'node:stream';
import type { CircuitBreaker } from '../circuit/breaker.js';
import type { Storage, UploadTarget, UrlOptions } from './storage.js';

/**
 * Any Storage behind a circuit breaker: every call that reaches the store goes through it, so an
 * outage opens the circuit and later calls fail at once (DependencyUnavailable) until a probe
 * finds the store back. Signing links needs no store and is never refused.
 */
export class BreakerStorage implements Storage {
  readonly kind: Storage['kind'];

  constructor(
    private readonly inner: Storage,
    readonly circuit: CircuitBreaker,
  ) {
    this.kind = inner.kind;
  }

  put(key: string, body: Uint8Array | Readable, contentType?: string): Promise<void> {
    return this.circuit.call(() => this.inner.put(key, body, contentType));
  }

  async read(key: string): Promise<Readable> {
    const stream = await this.circuit.call(() => this.inner.read(key));
    // A body that breaks while it streams is an outage the call itself did not see.
    stream.once('error', (err) => this.circuit.failed(err));
    return stream;
  }

  stat(key: string) {
    return this.circuit.call(() => this.inner.stat(key));
  }

  delete(key: string) {
    return this.circuit.call(() => this.inner.delete(key));
  }

  deletePrefix(prefix: string) {
    return this.circuit.call(() => this.inner.deletePrefix(prefix));
  }

  signedUrl(key: string, options: UrlOptions): Promise<string> {
    return this.inner.signedUrl(key, options);
  }

  uploadUrl(key: string, options: { baseUrl: string; sizeBytes: number; ttlSeconds: number }): Promise<UploadTarget> {
    return this.inner.uploadUrl(key, options);
  }

  localPath(key: string) {
    return this.inner.localPath(key);
  }

  ping() {
    return this.circuit.call(() => this.inner.ping());
  }

  /**
   * Whether work that needs the store should start: at once while the circuit is closed; else
   * only when a probe (a ping, when one is due) finds the store back.
   */
  async available(): Promise<boolean> {
    if (this.circuit.state === 'closed') return true;
    return this.ping().then(
      () => true,
      () => false,
    );
  }

  close() {
    this.inner.close();
  }
}
