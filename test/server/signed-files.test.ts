import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UrlSigner } from '../../src/storage/url-signer.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';

describe('the signed file route', () => {
  let k: TestKiln;
  let signer: UrlSigner;
  const key = 'generations/test/1/0.png';
  const get = (url: string, init: RequestInit = {}) => k.kiln.yoga!.fetch(new URL(url), init);

  beforeAll(async () => {
    k = await startTestKiln({}, ['--role', 'api']);
    await k.kiln.storage.put(key, new Uint8Array([137, 80, 78, 71]));
    signer = new UrlSigner((await fs.readFile(path.join(k.dataDir, 'url-secret'), 'utf8')).trim(), 60);
  });
  afterAll(() => k?.stop());

  const link = (params: Record<string, string>, p = key) => `http://kiln.test/files/${p}?${new URLSearchParams(params)}`;

  it('serves a file to anyone holding a valid link, with nosniff and a cache lifetime', async () => {
    const url = await k.kiln.storage.signedUrl(key, { baseUrl: 'http://kiln.test' });
    const res = await get(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toMatch(/^private, max-age=\d+$/);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(new Uint8Array([137, 80, 78, 71]));
    expect((await get(url, { method: 'HEAD' })).status).toBe(200);
  });

  it('serves downloads as attachments', async () => {
    const res = await get(await k.kiln.storage.signedUrl(key, { baseUrl: 'http://kiln.test', downloadAs: 'fox.png' }));
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="fox.png"');
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
  });

  it('refuses expired, tampered and unsigned links with 403, and answers 404 for what is not there', async () => {
    const past = signer.sign(key, '', 60, Date.now() - 120_000);
    expect((await get(link({ expires: String(past.expires), sig: past.sig }))).status).toBe(403);
    const fresh = signer.sign(key);
    expect((await get(link({ expires: String(fresh.expires + 60), sig: fresh.sig }))).status).toBe(403);
    expect((await get(link({}))).status).toBe(403);
    const other = signer.sign('generations/none/1/0.png');
    expect((await get(link({ expires: String(other.expires), sig: other.sig }, 'generations/none/1/0.png'))).status).toBe(404);
    expect((await get(link({}, '..%2F..%2Fetc%2Fpasswd'))).status).toBe(404);
    expect((await get(await k.kiln.storage.signedUrl(key, { baseUrl: 'http://kiln.test' }), { method: 'DELETE' })).status).toBe(405);
  });
});
