import { text } from 'node:stream/consumers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitState, DependencyUnavailable } from '../../src/circuit/breaker.js';
import { BreakerStorage } from '../../src/storage/breaker-storage.js';
import { isStorageOutage } from '../../src/storage/outage.js';
import { S3Storage, type S3StorageOptions } from '../../src/storage/s3.js';
import { type ProxyAnswer, type S3Proxy, startS3Proxy } from '../support/s3-proxy.js';
import { startS3Server, type TestS3Server } from '../support/s3.js';

const OPEN_MS = 400;

describe('storage behind a circuit breaker, on a real S3-compatible server that goes away', () => {
  let s3: TestS3Server;
  let proxy: S3Proxy;
  /** What the proxy answers instead of passing requests on, when set. */
  let answer: ProxyAnswer | undefined;
  let storage: BreakerStorage;
  let transitions: `${CircuitState}>${CircuitState}`[];
  let rejected: number;

  beforeAll(async () => {
    s3 = await startS3Server();
    // The proxy counts what reaches the service: an open circuit sends it nothing.
    proxy = await startS3Proxy(s3.endpoint, () => answer ?? 'pass');
  });
  afterAll(async () => {
    await proxy?.stop();
    await s3?.stop();
  });
  const open = (options: Partial<S3StorageOptions> = {}) => {
    const circuit = new CircuitBreaker('storage', { failureThreshold: 3, openMs: OPEN_MS, isOutage: isStorageOutage });
    transitions = [];
    rejected = 0;
    circuit.onTransition((from, to) => transitions.push(`${from}>${to}`));
    circuit.onReject(() => rejected++);
    // One try per call, so that each outage counts once and the test stays quick.
    storage = new BreakerStorage(new S3Storage({ ...s3, endpoint: proxy.endpoint, urlTtlSeconds: 3600, maxAttempts: 1, ...options }), circuit);
  };
  afterEach(async () => {
    storage?.close();
    answer = undefined;
    await s3.resume();
  });

  const failure = (call: Promise<unknown>) =>
    call.then(
      () => {
        throw new Error('expected the call to fail');
      },
      (err: unknown) => err,
    );

  it('opens after repeated outages, then fails at once without reaching the service, with UNAVAILABLE', async () => {
    open();
    await storage.put('a.txt', Buffer.from('kept'));
    await s3.pause();
    for (let i = 0; i < 3; i++) {
      const err = await failure(storage.stat('a.txt'));
      expect(err).toBeInstanceOf(DependencyUnavailable);
      expect(err).toMatchObject({ code: 'UNAVAILABLE', extensions: { dependency: 'storage' } });
      // The driver's own error is kept for the logs, not shown in the message.
      expect(isStorageOutage((err as Error).cause)).toBe(true);
    }
    expect(storage.circuit.state).toBe('open');
    expect(transitions).toEqual(['closed>open']);

    const reached = proxy.requests.length;
    const started = performance.now();
    for (const call of [storage.stat('a.txt'), storage.read('a.txt'), storage.put('b.txt', Buffer.from('x')), storage.deletePrefix('x'), storage.ping()]) {
      const err = await failure(call);
      expect(err).toBeInstanceOf(DependencyUnavailable);
      expect((err as DependencyUnavailable).extensions.retryAfterSeconds).toBe(1);
      expect((err as Error).message).toBe('storage is unavailable; try again in 1 s');
    }
    expect(performance.now() - started).toBeLessThan(50);
    expect(proxy.requests.length).toBe(reached);
    expect(rejected).toBe(5);
    // Signing a link needs no service: it still works.
    expect(await storage.signedUrl('a.txt', { baseUrl: 'http://kiln' })).toMatch(/X-Amz-Signature=/);
    expect(storage.circuit.snapshot()).toMatchObject({ state: 'open', consecutiveFailures: 3, lastFailure: expect.any(String), probeAt: expect.any(String) });
  });

  it('probes half-open: one call goes through; a failure opens it again, a success closes it', async () => {
    open();
    await s3.pause();
    for (let i = 0; i < 3; i++) await failure(storage.stat('a.txt'));
    await new Promise((r) => setTimeout(r, OPEN_MS));
    // Still down: the probe reaches the service, fails, and the circuit opens again.
    const reached = proxy.requests.length;
    const [probe, second] = [failure(storage.stat('a.txt')), failure(storage.stat('a.txt'))];
    await Promise.all([probe, second]);
    expect(proxy.requests.length).toBe(reached + 1); // the second call failed at once, behind the probe
    expect(storage.circuit.state).toBe('open');

    await s3.resume();
    await new Promise((r) => setTimeout(r, OPEN_MS));
    expect(await text(await storage.read('a.txt'))).toBe('kept');
    expect(storage.circuit.state).toBe('closed');
    expect(transitions).toEqual(['closed>open', 'open>half_open', 'half_open>open', 'open>half_open', 'half_open>closed']);
    expect(storage.circuit.snapshot()).toEqual({ dependency: 'storage', state: 'closed', consecutiveFailures: 0, lastFailure: expect.any(String) });
  });

  it('counts 5xx answers and timeouts as outages, but not a missing object or a refused request', async () => {
    open();
    for (let i = 0; i < 5; i++) {
      expect(await storage.stat(`missing-${i}.txt`)).toBeUndefined();
      await expect(storage.read(`missing-${i}.txt`)).rejects.toMatchObject({ name: 'NoSuchKey' });
    }
    answer = { status: 403, code: 'AccessDenied' };
    for (let i = 0; i < 5; i++) await expect(storage.stat('a.txt')).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
    expect(storage.circuit.state).toBe('closed');

    answer = { status: 503, code: 'SlowDown' };
    for (let i = 0; i < 3; i++) await expect(storage.stat('a.txt')).rejects.toBeInstanceOf(DependencyUnavailable);
    expect(storage.circuit.state).toBe('open');
  });

  it('counts a service that stops answering (past the request timeout) as an outage', async () => {
    open({ requestTimeoutMs: 200 });
    answer = 'stall';
    for (let i = 0; i < 3; i++) await expect(storage.stat('a.txt')).rejects.toBeInstanceOf(DependencyUnavailable);
    expect(storage.circuit.state).toBe('open');
    expect(storage.circuit.snapshot().lastFailure).toMatch(/timed? ?out/i);
  });

  it('counts a refusal in between as the service answering: only outages in a row open it', async () => {
    open();
    await s3.pause();
    await failure(storage.stat('a.txt'));
    await failure(storage.stat('a.txt'));
    await s3.resume();
    expect(await storage.stat('missing.txt')).toBeUndefined();
    await s3.pause();
    await failure(storage.stat('a.txt'));
    await failure(storage.stat('a.txt'));
    expect(storage.circuit.state).toBe('closed');
  });
});
