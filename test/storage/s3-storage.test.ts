import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { buffer, text } from 'node:stream/consumers';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { S3Storage, type S3StorageOptions } from '../../src/storage/s3.js';
import { type ProxiedRequest, type ProxyAnswer, startS3Proxy } from '../support/s3-proxy.js';
import { presignedSignatureError } from '../support/s3-signature.js';
import { startS3Server, type TestS3Server } from '../support/s3.js';
import { failingStream, storageContract } from './storage-contract.js';

const MiB = 1024 * 1024;

let s3: TestS3Server;
const cleanups: (() => unknown)[] = [];
beforeAll(async () => {
  s3 = await startS3Server();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => s3?.stop());

/** A driver on the test server (or on `endpoint`, a proxy in front of it), closed after the test. */
function open(options: Partial<S3StorageOptions> = {}) {
  const storage = new S3Storage({ ...s3, urlTtlSeconds: 3600, partSizeBytes: 5 * MiB, ...options });
  cleanups.push(() => storage.close());
  return storage;
}

async function proxy(answer?: (request: ProxiedRequest, index: number) => ProxyAnswer) {
  const p = await startS3Proxy(s3.endpoint, answer);
  cleanups.push(() => p.stop());
  return p;
}

/** A proxy that refuses presigned requests whose signature S3 would refuse (s3rver does not check). */
const verifyingProxy = () =>
  proxy((request) =>
    request.query.has('X-Amz-Signature') &&
    presignedSignatureError(request, { [s3.credentials.accessKeyId]: s3.credentials.secretAccessKey })
      ? { status: 403, code: 'SignatureDoesNotMatch' }
      : 'pass',
  );

/** One plain HTTP request with exactly these headers, as a browser or curl would send it. */
function send(url: string, { method = 'GET', headers = {}, body }: { method?: string; headers?: Record<string, string>; body?: Uint8Array } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      buffer(res).then((b) => resolve({ status: res.statusCode!, headers: res.headers, body: b }), reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const isPart = (r: ProxiedRequest) => r.method === 'PUT' && r.query.has('partNumber') && r.query.has('uploadId');

describe('S3 storage, the shared contract', () => {
  let storage: S3Storage;
  beforeAll(() => {
    storage = new S3Storage({ ...s3, urlTtlSeconds: 3600, partSizeBytes: 5 * MiB });
  });
  afterAll(() => storage?.close());
  storageContract(() => storage);

  it('keeps no local path', () => {
    expect(storage.localPath()).toBeUndefined();
  });

  it('takes its credentials from the usual AWS environment when given none', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', s3.credentials.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', s3.credentials.secretAccessKey);
    try {
      await expect(open({ credentials: undefined }).ping()).resolves.toBeUndefined();
      // s3rver checks the access key (not the signature), so a key it does not know shows whose was used.
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'NOT-A-KEY');
      await expect(open({ credentials: undefined }).stat('x.txt')).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('S3 storage uploads', () => {
  it('sends a small byte array in one PutObject and a larger body or a stream in several parts', async () => {
    const p = await proxy();
    const storage = open({ endpoint: p.endpoint });

    await storage.put('small.bin', new Uint8Array(1000));
    expect(p.requests.map((r) => `${r.method} ${r.query.has('uploadId') || r.query.has('uploads') ? 'multipart' : 'object'}`)).toEqual([
      'PUT object',
    ]);

    const big = crypto.randomBytes(5 * MiB + 1000);
    p.requests.length = 0;
    await storage.put('big.bin', big);
    expect(p.requests.filter(isPart)).toHaveLength(2);
    expect(p.requests.filter((r) => r.method === 'POST' && r.query.has('uploadId'))).toHaveLength(1);
    expect(p.requests.every((r) => r.status === 200)).toBe(true);
    expect(await storage.stat('big.bin')).toEqual({ size: big.length });
    expect((await buffer(await storage.read('big.bin'))).equals(big)).toBe(true);

    p.requests.length = 0;
    const chunks = Array.from({ length: Math.ceil(big.length / (64 * 1024)) }, (_, i) => big.subarray(i * 64 * 1024, (i + 1) * 64 * 1024));
    await storage.put('big-stream.bin', Readable.from(chunks));
    expect(p.requests.filter(isPart)).toHaveLength(2);
    expect((await buffer(await storage.read('big-stream.bin'))).equals(big)).toBe(true);
  });

  it('aborts the multipart upload when the stream fails after parts were sent, and stores nothing', async () => {
    const p = await proxy();
    const storage = open({ endpoint: p.endpoint });
    await expect(storage.put('half.bin', failingStream(6 * MiB))).rejects.toThrow('disk on fire');
    const created = p.requests.find((r) => r.method === 'POST' && r.query.has('uploads'));
    expect(created).toBeDefined();
    expect(p.requests.filter(isPart).length).toBeGreaterThan(0);
    // s3rver 3.7.1 answers AbortMultipartUpload with 405 (not implemented); what matters here is
    // that the driver asked, and that no object appeared.
    expect(p.requests.filter((r) => r.method === 'DELETE' && r.query.has('uploadId'))).toHaveLength(1);
    expect(await storage.stat('half.bin')).toBeUndefined();
  });

  it('deletes everything under a prefix page by page, at most a thousand objects per request', async () => {
    const storage = open();
    const keys = Array.from({ length: 7 }, (_, i) => `pages/${i}.txt`);
    for (const key of [...keys, 'pages-beside.txt']) await storage.put(key, new Uint8Array(1));
    // S3 may return fewer keys than asked for; pages of two make the driver follow s3rver's
    // continuation tokens without a thousand objects to set up.
    const p = await proxy((r) =>
      r.query.get('list-type') === '2' && r.query.get('max-keys') === '1000' ? { forward: r.url.replace('max-keys=1000', 'max-keys=2') } : 'pass',
    );
    await open({ endpoint: p.endpoint }).deletePrefix('pages');
    const lists = p.requests.filter((r) => r.method === 'GET' && r.query.get('list-type') === '2');
    expect(lists.map((r) => r.query.get('max-keys'))).toEqual(['1000', '1000', '1000', '1000']);
    expect(lists.filter((r) => r.query.has('continuation-token'))).toHaveLength(3);
    // s3rver may answer a DeleteObjects with 500 when two of its deletions race to remove the
    // same emptied folder; the driver retries it, so count the batches that were done.
    const deletes = p.requests.filter((r) => r.method === 'POST' && r.query.has('delete') && r.status === 200);
    expect(deletes).toHaveLength(4);
    for (const key of keys) expect(await storage.stat(key), key).toBeUndefined();
    expect(await storage.stat('pages-beside.txt')).toEqual({ size: 1 });
  });

  it('keeps every object under its key prefix', async () => {
    const whole = open();
    const tenant = open({ keyPrefix: 'tenant-a/' });
    await tenant.put('d/x.txt', new TextEncoder().encode('mine'));
    await whole.put('d/x.txt', new TextEncoder().encode('other'));
    expect(await text(await whole.read('tenant-a/d/x.txt'))).toBe('mine');
    expect(new URL(await tenant.signedUrl('d/x.txt', { baseUrl: '' })).pathname).toBe(`/${s3.bucket}/tenant-a/d/x.txt`);
    await tenant.deletePrefix('d');
    expect(await whole.stat('tenant-a/d/x.txt')).toBeUndefined();
    expect(await text(await whole.read('d/x.txt'))).toBe('other');
  });
});

describe('S3 storage presigned URLs', () => {
  it('gives GET URLs that work, only for the key and download name they were made for', async () => {
    const p = await verifyingProxy();
    const storage = open({ endpoint: p.endpoint });
    await storage.put('gen/1.png', new TextEncoder().encode('one'));
    await storage.put('gen/2.png', new TextEncoder().encode('two'));

    const url = await storage.signedUrl('gen/1.png', { baseUrl: 'http://kiln.test' });
    const got = await send(url);
    expect(got.status).toBe(200);
    expect(got.body.toString()).toBe('one');
    expect(got.headers['content-type']).toBe('image/png');
    expect((await send(url.replace('gen/1.png', 'gen/2.png'))).status).toBe(403);

    const download = await storage.signedUrl('gen/1.png', { baseUrl: 'http://kiln.test', downloadAs: 'my "model"/v1.safetensors' });
    const attached = await send(download);
    expect(attached.status).toBe(200);
    expect(attached.headers['content-disposition']).toBe('attachment; filename="my__model__v1.safetensors"');
    expect(attached.headers['content-type']).toBe('application/octet-stream');
    const renamed = new URL(download);
    renamed.searchParams.set('response-content-disposition', 'inline');
    expect((await send(renamed.href)).status).toBe(403);
  });

  it('names the public endpoint in its URLs when clients reach the store at another address', async () => {
    const outside = await verifyingProxy();
    const storage = open({ publicEndpoint: outside.endpoint });
    await storage.put('gen/public.png', new TextEncoder().encode('public'));
    const url = await storage.signedUrl('gen/public.png', { baseUrl: 'http://kiln.test' });
    expect(url.startsWith(`${outside.endpoint}/`)).toBe(true);
    const got = await send(url);
    expect(got.status).toBe(200);
    expect(got.body.toString()).toBe('public');
    const upload = await storage.uploadUrl('gen/up.png', { baseUrl: 'http://kiln.test', sizeBytes: 2, ttlSeconds: 60 });
    expect(upload.url.startsWith(`${outside.endpoint}/`)).toBe(true);
  });

  it('gives GET URLs that expire after the configured lifetime', async () => {
    const p = await verifyingProxy();
    await open().put('gen/old.png', new TextEncoder().encode('old'));
    const signedAgo = (seconds: number) =>
      open({ endpoint: p.endpoint, urlTtlSeconds: 60, now: () => Date.now() - seconds * 1000 }).signedUrl('gen/old.png', { baseUrl: '' });
    expect((await send(await signedAgo(30))).status).toBe(200);
    const expired = await send(await signedAgo(90));
    expect(expired.status).toBe(403);
    expect(expired.body.toString()).toContain('Request has expired');
  });

  it('hands out the same URL until a fifth of its lifetime is left, then a fresh one', async () => {
    let now = Math.floor(Date.now() / 1000) * 1000;
    const storage = open({ urlTtlSeconds: 100, now: () => now });
    const signedAt = (url: string) => new URL(url).searchParams.get('X-Amz-Date');

    const first = await storage.signedUrl('gen/a.png', { baseUrl: '' });
    const asFile = await storage.signedUrl('gen/a.png', { baseUrl: '', downloadAs: 'a.png' });
    expect(asFile).not.toBe(first);
    now += 79_000;
    expect(await storage.signedUrl('gen/a.png', { baseUrl: '' })).toBe(first);
    expect(await storage.signedUrl('gen/a.png', { baseUrl: '', downloadAs: 'a.png' })).toBe(asFile);
    now += 2_000;
    const second = await storage.signedUrl('gen/a.png', { baseUrl: '' });
    expect(second).not.toBe(first);
    expect(signedAt(second)).not.toBe(signedAt(first));
    expect(new URL(second).searchParams.get('X-Amz-Expires')).toBe('100');
    expect(await storage.signedUrl('gen/a.png', { baseUrl: '' })).toBe(second);
  });

  it('keeps a bounded number of URLs, dropping the least recently used', async () => {
    let now = Math.floor(Date.now() / 1000) * 1000;
    const storage = open({ urlCacheSize: 2, now: () => now });
    const a = await storage.signedUrl('a.png', { baseUrl: '' });
    const b = await storage.signedUrl('b.png', { baseUrl: '' });
    now += 1000;
    expect(await storage.signedUrl('a.png', { baseUrl: '' })).toBe(a);
    await storage.signedUrl('c.png', { baseUrl: '' });
    expect(await storage.signedUrl('a.png', { baseUrl: '' })).toBe(a);
    expect(await storage.signedUrl('b.png', { baseUrl: '' })).not.toBe(b);
  });

  it('gives upload URLs that take exactly the declared size, with the headers it names', async () => {
    const p = await verifyingProxy();
    const storage = open({ endpoint: p.endpoint });
    const target = await storage.uploadUrl('uploads/m.bin', { baseUrl: 'http://kiln.test', sizeBytes: 1000, ttlSeconds: 60 });
    expect(target.method).toBe('PUT');
    expect(target.headers['content-length']).toBe('1000');
    expect(target.expiresAt.getTime()).toBeGreaterThan(Date.now() + 50_000);
    expect(new URL(target.url).searchParams.get('X-Amz-SignedHeaders')?.split(';')).toContain('content-length');

    for (const size of [999, 1001, 0]) {
      const wrong = await send(target.url, { method: 'PUT', headers: { ...target.headers, 'content-length': String(size) }, body: new Uint8Array(size) });
      expect(wrong.status, `${size} bytes`).toBe(403);
    }
    expect(await storage.stat('uploads/m.bin')).toBeUndefined();

    const bytes = crypto.randomBytes(1000);
    const right = await send(target.url, { method: 'PUT', headers: target.headers, body: bytes });
    expect(right.status, right.body.toString()).toBe(200);
    expect(await storage.stat('uploads/m.bin')).toEqual({ size: 1000 });
    expect((await buffer(await storage.read('uploads/m.bin'))).equals(bytes)).toBe(true);
  });

  it('gives upload URLs that expire', async () => {
    const p = await verifyingProxy();
    const storage = open({ endpoint: p.endpoint, now: () => Date.now() - 120_000 });
    const target = await storage.uploadUrl('uploads/late.bin', { baseUrl: '', sizeBytes: 3, ttlSeconds: 60 });
    const late = await send(target.url, { method: 'PUT', headers: target.headers, body: new Uint8Array(3) });
    expect(late.status).toBe(403);
    expect(late.body.toString()).toContain('Request has expired');
    expect(await storage.stat('uploads/late.bin')).toBeUndefined();
  });
});

describe('S3 storage when the service fails', () => {
  const unavailable: ProxyAnswer = { status: 503, code: 'ServiceUnavailable' };

  it('retries 5xx answers with backoff, then succeeds', async () => {
    let failures = 0;
    const p = await proxy(() => (failures-- > 0 ? unavailable : 'pass'));
    const storage = open({ endpoint: p.endpoint, maxAttempts: 3 });
    const attempt = async <T>(op: () => Promise<T>) => {
      failures = 2;
      p.requests.length = 0;
      const result = await op();
      expect(p.requests.map((r) => r.status)).toEqual([503, 503, 200]);
      return result;
    };
    await attempt(() => storage.put('flaky/x.txt', new TextEncoder().encode('made it')));
    expect(await attempt(() => storage.stat('flaky/x.txt'))).toEqual({ size: 7 });
    expect(await text(await attempt(() => storage.read('flaky/x.txt')))).toBe('made it');
    await attempt(() => storage.ping());
  });

  it('retries when throttled', async () => {
    const p = await proxy((_, index) => (index === 0 ? { status: 503, code: 'SlowDown' } : 'pass'));
    await open({ endpoint: p.endpoint, maxAttempts: 2 }).put('throttled/x.txt', new Uint8Array(3));
    expect(p.requests.map((r) => r.status)).toEqual([503, 200]);
  });

  it('retries a request that stalls past the request timeout', async () => {
    const p = await proxy((_, index) => (index === 0 ? 'stall' : 'pass'));
    const storage = open({ endpoint: p.endpoint, requestTimeoutMs: 300, maxAttempts: 3 });
    const started = performance.now();
    await storage.put('slow/x.txt', new TextEncoder().encode('late but whole'));
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(p.requests).toHaveLength(2);
    expect(await text(await storage.read('slow/x.txt'))).toBe('late but whole');
  });

  it('gives up with an error after the configured attempts when the service keeps failing', async () => {
    const p = await proxy(() => unavailable);
    const storage = open({ endpoint: p.endpoint, maxAttempts: 3 });
    await expect(storage.stat('down/x.txt')).rejects.toMatchObject({ $metadata: { httpStatusCode: 503, attempts: 3 } });
    expect(p.requests).toHaveLength(3);
    p.requests.length = 0;
    await expect(storage.put('down/x.txt', new Uint8Array(10))).rejects.toMatchObject({ $metadata: { httpStatusCode: 503 } });
    expect(p.requests).toHaveLength(3);
  });

  it('gives up on a service that never answers instead of waiting forever', async () => {
    const p = await proxy(() => 'stall');
    const storage = open({ endpoint: p.endpoint, requestTimeoutMs: 200, maxAttempts: 2 });
    await expect(storage.ping()).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(p.requests).toHaveLength(2);
  });

  it('gives up on an endpoint that refuses connections', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const storage = open({ endpoint: `http://127.0.0.1:${port}`, maxAttempts: 2 });
    await expect(storage.ping()).rejects.toMatchObject({ code: 'ECONNREFUSED', $metadata: { attempts: 2 } });
  });
});
