import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { createSchema, createYoga } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useWebApp, type WebAppSettings } from '../../src/server/web-app.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { ensureWebAppBuilt } from '../support/web-build.js';

const settings: WebAppSettings = { maxBatch: 7, maxMultipartBytes: 1024, maxUploadBytes: 2048, apiKeys: true, graphiql: false };
const INDEX = '<!doctype html><title>app</title><script id="kiln-settings" type="application/json">{}</script><script type="module" src="/assets/app-Ab12.js"></script>';
const SCRIPT = `console.log(${JSON.stringify('x'.repeat(4000))});`;

describe('the web app route', () => {
  let root: string;
  let dist: string;
  let yoga: ReturnType<typeof createYoga>;
  const get = (p: string, headers: Record<string, string> = {}) => yoga.fetch(`http://kiln.test${p}`, { headers });

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-web-app-'));
    dist = path.join(root, 'dist');
    await fs.mkdir(path.join(dist, 'assets'), { recursive: true });
    await fs.writeFile(path.join(dist, 'index.html'), INDEX);
    await fs.writeFile(path.join(dist, 'assets', 'app-Ab12.js'), SCRIPT);
    await fs.writeFile(path.join(dist, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    await fs.writeFile(path.join(dist, '.env'), 'SECRET=1');
    await fs.writeFile(path.join(root, 'outside.txt'), 'not part of the app');
    yoga = createYoga({ schema: createSchema({ typeDefs: 'type Query { ok: Boolean }' }), plugins: [useWebApp(settings, dist)], graphiql: false, landingPage: false });
  });

  afterAll(() => fs.rm(root, { recursive: true, force: true }));

  it('serves index.html at / and at every app route, revalidated, with the settings filled in', async () => {
    for (const p of ['/', '/queue', '/gallery/3f1c0d2e-0000-4000-8000-000000000000', '/status']) {
      const res = await get(p);
      expect(res.status, p).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      const html = await res.text();
      const slot = /<script id="kiln-settings" type="application\/json">(.*?)<\/script>/.exec(html)![1]!;
      expect(JSON.parse(slot)).toEqual(settings);
    }
  });

  it('serves hashed assets as immutable, gzipped when asked, and answers 304 to a current copy', async () => {
    const plain = await get('/assets/app-Ab12.js');
    expect(plain.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(plain.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await plain.text()).toBe(SCRIPT);
    const packed = await get('/assets/app-Ab12.js', { 'accept-encoding': 'gzip, br' });
    expect(packed.headers.get('content-encoding')).toBe('gzip');
    expect(zlib.gunzipSync(Buffer.from(await packed.arrayBuffer())).toString()).toBe(SCRIPT);
    const again = await get('/assets/app-Ab12.js', { 'if-none-match': plain.headers.get('etag')! });
    expect(again.status).toBe(304);
    const icon = await get('/favicon.svg');
    expect([icon.headers.get('content-type'), icon.headers.get('cache-control')]).toEqual(['image/svg+xml', 'no-cache']);
  });

  it('answers 404 for missing files, dotfiles and paths outside its folder, not the app', async () => {
    for (const p of ['/assets/missing-Zz99.js', '/.env', '/..%2foutside.txt', '/assets/..%2f..%2foutside.txt']) {
      const res = await get(p);
      expect(res.status, p).toBe(404);
      expect(await res.text()).toBe('not found');
    }
  });

  it('leaves the API paths alone', async () => {
    const graphql = await yoga.fetch('http://kiln.test/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ ok }' }) });
    expect(await graphql.json()).toEqual({ data: { ok: null } });
    for (const p of ['/graphql', '/health', '/metrics', '/files/x.png', '/uploads/x', '/graphiql/v/graphiql.js']) {
      expect(await (await get(p, { accept: 'text/html' })).text(), p).not.toContain('<title>app</title>');
    }
  });

  it('says how to build the app when it is not built', async () => {
    const empty = createYoga({ schema: createSchema({ typeDefs: 'type Query { ok: Boolean }' }), plugins: [useWebApp(settings, path.join(root, 'none'))] });
    const res = await empty.fetch('http://kiln.test/');
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('npm run build:web');
  });
});

describe('Kiln serving its app and GraphiQL', () => {
  let k: TestKiln;

  beforeAll(async () => {
    await ensureWebAppBuilt();
    k = await startTestKiln({ KILN_MAX_BATCH: '6' });
  });

  afterAll(() => k?.stop());

  it('serves the built app at / with its settings, and every asset the page names', async () => {
    const res = await fetch(`${k.url}/`);
    const html = await res.text();
    expect(JSON.parse(/id="kiln-settings" type="application\/json">(.*?)<\/script>/.exec(html)![1]!)).toMatchObject({ maxBatch: 6, apiKeys: false, graphiql: true });
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(2);
    for (const a of assets) {
      const asset = await fetch(`${k.url}${a}`);
      expect(asset.status, a).toBe(200);
      expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(asset.headers.get('content-type')).toMatch(/^text\/(javascript|css)/);
    }
  });

  it('serves GraphiQL from its own files, with no address outside Kiln, opening on a Kiln example', async () => {
    const res = await fetch(`${k.url}/graphql`, { headers: { accept: 'text/html' } });
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toContain('unpkg');
    expect(html).toContain('generationProgress(id: $id)');
    const files = [...html.matchAll(/(?:src|href)="(\/graphiql\/[^"]+)"/g)].map((m) => m[1]!);
    expect(files.map((f) => f.split('/').pop())).toEqual(['favicon.ico', 'graphiql.css', 'graphiql.js']);
    for (const f of files) {
      const file = await fetch(`${k.url}${f}`);
      expect(file.status, f).toBe(200);
      expect(file.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    }
    const version = files[0]!.split('/')[2];
    expect((await fetch(`${k.url}/graphiql/${version}/editor.worker.js`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await fetch(`${k.url}/graphiql/not-this-version/graphiql.js`)).status).toBe(404);
  });
});
