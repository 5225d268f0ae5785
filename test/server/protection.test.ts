import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTestDatabase } from '../support/database.js';
import { collect, follow, httpClient, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE, GENERATE_BATCH, GENERATION, PROGRESS } from '../support/operations.js';
import { type KilnProcess, spawnKiln } from '../support/processes.js';

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

describe('the rate limit, shared by two API processes', () => {
  const apis: KilnProcess[] = [];
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-rate-'));
    const env = { DATABASE_URL: await createTestDatabase(), KILN_DATA_DIR: dataDir, KILN_RATE_LIMIT_PER_MINUTE: '3', KILN_RATE_LIMIT_ALLOW: '' };
    apis.push(...(await Promise.all([0, 1].map(() => spawnKiln(env, ['--role', 'api'])))));
  });
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.kill('SIGTERM')));
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('lets a client spend its bucket across both processes, then refuses with RATE_LIMITED, 429 and Retry-After', async () => {
    for (let i = 0; i < 3; i++) await ok(apis[i % 2]!.gql(GENERATE, { input: { prompt: `p${i}` } }));
    const refused = await post(apis[1]!.url!, { query: GENERATE, variables: { input: { prompt: 'one too many' } } });
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(20);
    const body = (await refused.json()) as { errors: { extensions: { code: string; retryAfterSeconds: number } }[] };
    expect(body.errors[0]!.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: retryAfter });
    // A batch counts each of its inputs.
    const batch = await apis[0]!.gql(GENERATE_BATCH, { inputs: [{ prompt: 'a' }, { prompt: 'b' }] });
    expect(batch.errors![0]!.extensions!.code).toBe('RATE_LIMITED');
    // Refusals are counted.
    expect(await (await fetch(`${apis[1]!.url}/metrics`)).text()).toMatch(/^kiln_rate_limited_total 1$/m);
  });
});

describe('limits on what one operation may ask', () => {
  let k: TestKiln;
  beforeAll(async () => {
    k = await startTestKiln({ NODE_ENV: 'production', KILN_WS_MAX_SUBSCRIPTIONS: '2', KILN_WS_KEEPALIVE_S: '1' }, ['--role', 'api']);
  });
  afterAll(() => k?.stop());

  const refusal = async (query: string) => {
    const res = await post(k.url, { query });
    expect(res.status).toBeLessThan(500);
    return ((await res.json()) as { errors: { message: string; extensions: { code: string } }[] }).errors[0]!;
  };

  it('refuses queries nested too deep', async () => {
    const deep = `{ models { edges { node { ${'baseModel { '.repeat(12)}id${' }'.repeat(12)} } } } }`;
    const error = await refusal(deep);
    expect(error.extensions.code).toBe('BAD_USER_INPUT');
    expect(error.message).toMatch(/depth/i);
  });

  it('refuses too many aliases', async () => {
    const error = await refusal(`{ ${Array.from({ length: 20 }, (_, i) => `a${i}: queueStats { pending }`).join(' ')} }`);
    expect(error.extensions.code).toBe('BAD_USER_INPUT');
    expect(error.message).toMatch(/alias/i);
  });

  it('refuses queries that cost too much', async () => {
    // Within the depth and token limits, but hundreds of fields deep down.
    const nested = (depth: number): string => (depth === 0 ? 'id '.repeat(400) : `id baseModel { ${nested(depth - 1)} }`);
    const error = await refusal(`{ models { edges { node { ${nested(8)} } } } }`);
    expect(error.extensions.code).toBe('BAD_USER_INPUT');
    expect(error.message).toMatch(/cost/i);
  });

  it('has no introspection and no GraphiQL in production, over HTTP and WebSocket', async () => {
    const error = await refusal('{ __schema { types { name } } }');
    expect(error.extensions.code).toBe('BAD_USER_INPUT');
    expect(error.message).toMatch(/introspection/i);
    const page = await fetch(`${k.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(await page.text()).not.toMatch(/graphiql/i);
    const client = wsClient(k.url);
    await expect(collect(client, '{ __schema { queryType { name } } }')).rejects.toThrow(/introspection/i);
    await client.dispose();
  });

  it('caps the operations one socket runs at once, the size of its messages, and pings it', async () => {
    const client = wsClient(k.url);
    const { generate } = await ok(k.gql(GENERATE, { input: { prompt: 'watched' } }));
    const open = [follow(client, PROGRESS, { id: generate.id }), follow(client, PROGRESS, { id: generate.id })];
    await expect(collect(client, PROGRESS, { id: generate.id })).rejects.toThrow(/FORBIDDEN|at most 2/);
    void open;
    await client.dispose();

    const socket = new WebSocket(`${k.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    await new Promise((resolve) => socket.once('open', resolve));
    const pinged = new Promise((resolve) => socket.once('ping', resolve));
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await pinged; // KILN_WS_KEEPALIVE_S=1
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.send(JSON.stringify({ type: 'subscribe', id: '1', payload: { query: `{ ${'x'.repeat(2 * 1024 * 1024)} }` } }));
    expect(await closed).toBe(1009); // message too big
  });

  it('refuses a value nested 5,000 deep cleanly, over HTTP (as the GraphQL-over-HTTP spec says) and graphql-ws, socket kept', async () => {
    const deep = `{ generation(id: ${'['.repeat(5000)}"x"${']'.repeat(5000)}) { id } }`;
    for (const [accept, status] of [['application/json', 200], ['application/graphql-response+json', 400]] as const) {
      const res = await post(k.url, { query: deep }, { accept });
      expect(res.status).toBe(status);
      const error = ((await res.json()) as { errors: { message: string; extensions: { code: string } }[] }).errors[0]!;
      expect(error.extensions.code).toBe('BAD_USER_INPUT');
      expect(error.message).toMatch(/Nesting limit of 64 exceeded/);
    }
    const client = wsClient(k.url);
    await expect(collect(client, deep)).rejects.toThrow(/Nesting limit.*BAD_USER_INPUT/);
    // The same socket still serves: the refusal was that operation's alone.
    expect(await collect(client, '{ queueStats { pending } }')).toEqual([{ queueStats: { pending: expect.any(Number) } }]);
    await client.dispose();
  });

  it('refuses selections nested 5,000 deep and documents over the token limit before parsing them', async () => {
    const selections = await refusal(`{ ${'models { '.repeat(5000)}id${' }'.repeat(5000)} }`);
    expect(selections.extensions.code).toBe('BAD_USER_INPUT');
    expect(selections.message).toMatch(/Nesting limit/);
    const tokens = await refusal(`{ ${Array.from({ length: 1100 }, () => 'queueStats { pending }').join(' ')} }`);
    expect(tokens.extensions.code).toBe('BAD_USER_INPUT');
    expect(tokens.message).toMatch(/Token limit of 2000 exceeded/);
  });

  it('refuses an oversized JSON body with PAYLOAD_TOO_LARGE', async () => {
    const res = await post(k.url, { query: GENERATE, variables: { input: { prompt: 'x'.repeat(2 * 1024 * 1024) } } });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('PAYLOAD_TOO_LARGE');
  });
});

describe('API keys', () => {
  const KEY = 'studio-key-0123456789';
  let k: TestKiln;
  beforeAll(async () => {
    k = await startTestKiln({ KILN_API_KEYS: `studio:${KEY}` });
  });
  afterAll(() => k?.stop());

  it('refuses HTTP requests without a valid key with UNAUTHENTICATED and 401', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-key-0123456789' }, { authorization: KEY }] as Record<string, string>[]) {
      const res = await post(k.url, { query: '{ queueStats { pending } }' }, headers);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('UNAUTHENTICATED');
    }
    const allowed = await post(k.url, { query: '{ queueStats { pending } }' }, { authorization: `Bearer ${KEY}` });
    expect(allowed.status).toBe(200);
  });

  it('closes a graphql-ws connection without a valid key with 4401, and serves one with it', async () => {
    const refused = createClient({ url: `${k.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: 'Bearer nope-0123456789abc' } });
    const closeCode = await new Promise<number>((resolve) => {
      refused.on('closed', (event) => resolve((event as { code: number }).code));
      refused.subscribe({ query: '{ queueStats { pending } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    });
    expect(closeCode).toBe(4401);
    await refused.dispose();

    const gql = httpClient(k.url, { authorization: `Bearer ${KEY}` });
    const { generate } = await ok(gql(GENERATE, { input: { prompt: 'with a key', steps: 1 } }));
    const client = wsClient(k.url, { connectionParams: { authorization: `Bearer ${KEY}` } });
    const events = await collect(client, PROGRESS, { id: generate.id });
    expect(events.length).toBeGreaterThan(2);
    await client.dispose();

    // Signed links keep working without a key: they are the credential.
    const { generation } = await ok(gql(GENERATION, { id: generate.id }));
    expect((await fetch(generation.images[0].url)).status).toBe(200);
    expect((await fetch(`${k.url}/health/ready`)).status).toBe(200);
  });
});
