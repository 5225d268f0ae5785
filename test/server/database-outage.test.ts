import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningPostgres, startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { createLogger } from '../../src/log.js';
import { collect, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE, GENERATION } from '../support/operations.js';
import { freePort } from '../support/processes.js';

const QUEUE_STATS = '{ queueStats { pending running } }';

describe('Kiln while its Postgres is down', () => {
  let dir: string;
  let port: number;
  let server: RunningPostgres | undefined;
  let databaseUrl: string;
  let k: TestKiln;
  let client: Client;
  let closes = 0;

  // A Postgres of this test's own, so that stopping it stops nobody else's tests.
  const startPostgres = async () => {
    server = await startEmbeddedPostgres({
      dir: path.join(dir, 'data'),
      port,
      log: createLogger('silent'),
      settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
    });
    return server.url('kiln');
  };
  const stopPostgres = async () => {
    await server!.stop();
    server = undefined;
  };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-outage-'));
    await fs.chmod(dir, 0o755);
    port = await freePort();
    databaseUrl = await startPostgres();
    k = await startTestKiln({ DATABASE_URL: databaseUrl }, ['--role', 'api']);
    // An eager socket, kept open across the outage: it must never be closed by it.
    client = wsClient(k.url, { lazy: false, on: { closed: () => closes++ } });
  });
  afterAll(async () => {
    await client?.dispose();
    await k?.stop();
    if (server) await stopPostgres();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const post = async (query: string, variables?: Record<string, unknown>) => {
    const res = await fetch(`${k.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), text: await res.text() };
  };

  it('answers UNAVAILABLE (HTTP 503, Retry-After) over HTTP and graphql-ws, keeps the socket, and serves again once Postgres is back', async () => {
    const before = (await ok(k.gql(GENERATE, { input: { prompt: 'queued before the outage', steps: 2 } }))).generate.id as string;
    expect(await collect(client, QUEUE_STATS)).toEqual([{ queueStats: { pending: 1, running: 0 } }]);
    await stopPostgres();

    for (const [query, variables] of [
      [GENERATE, { input: { prompt: 'during the outage', steps: 2 } }],
      [GENERATION, { id: before }],
      [QUEUE_STATS, undefined],
    ] as const) {
      const reply = await post(query, variables);
      expect(reply.status, reply.text).toBe(503);
      expect(reply.retryAfter).toBe('5');
      const { errors } = JSON.parse(reply.text) as { errors: { message: string; extensions: Record<string, unknown> }[] };
      expect(errors.map((e) => e.extensions)).toEqual([{ code: 'UNAVAILABLE', retryAfterSeconds: 5 }]);
      expect(errors[0]!.message).toBe('The database is unavailable; try again shortly.');
      // Nothing internal: no address, no driver message.
      expect(reply.text).not.toMatch(new RegExp(`ECONNREFUSED|127\\.0\\.0\\.1|${port}|terminat`, 'i'));
    }
    // Operators still get the process's metrics; the queue's, read from the database, are left out.
    const metrics = await fetch(`${k.url}/metrics`);
    expect(metrics.status).toBe(200);
    const scraped = await metrics.text();
    expect(scraped).toMatch(/^kiln_process_cpu_user_seconds_total \S+$/m);
    expect(scraped).toMatch(/^kiln_circuit_state\{dependency="storage"\} 0$/m);
    expect(scraped).toMatch(/^kiln_queue_depth nan$/im);
    expect(scraped).not.toMatch(/^kiln_generations\{/m);
    expect((await fetch(`${k.url}/health/ready`)).status).toBe(503);

    let wsError = '';
    await collect(client, QUEUE_STATS).catch((err: Error) => (wsError = err.message));
    expect(JSON.parse(wsError)).toEqual([expect.objectContaining({ message: 'The database is unavailable; try again shortly.', extensions: { code: 'UNAVAILABLE', retryAfterSeconds: 5 } })]);

    await startPostgres();
    await expect.poll(async () => (await post(QUEUE_STATS)).status, { timeout: 20_000 }).toBe(200);
    expect(await collect(client, QUEUE_STATS)).toEqual([{ queueStats: { pending: 1, running: 0 } }]);
    expect(closes).toBe(0);
    expect((await ok(k.gql(GENERATE, { input: { prompt: 'after the outage', steps: 2 } }))).generate.id).toBeTruthy();
  });

  it('writes submissions whole or not at all when Postgres stops under them', async () => {
    // Submissions keep starting, a few milliseconds apart, from before the shutdown until after it;
    // the shutdown waits for the first to be accepted, so that the race has both sides.
    const submitted: ReturnType<typeof post>[] = [];
    let stopped = false;
    let answered = 0;
    const submitting = (async () => {
      for (let i = 0; !stopped; i++) {
        submitted.push(post(GENERATE, { input: { prompt: `racing the shutdown ${i}`, steps: 2 } }).finally(() => answered++));
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    await expect.poll(() => answered, { timeout: 20_000, interval: 5 }).toBeGreaterThan(0);
    await stopPostgres();
    stopped = true;
    await submitting;
    const replies = await Promise.all(submitted);
    const accepted = new Set<string>();
    for (const reply of replies) {
      const body = JSON.parse(reply.text) as { data?: { generate: { id: string } }; errors?: { extensions: { code: string } }[] };
      if (body.data?.generate) accepted.add(body.data.generate.id);
      else expect(body.errors!.map((e) => e.extensions.code)).toEqual(['UNAVAILABLE']);
    }
    expect(accepted.size).toBeGreaterThan(0);
    console.log(`submissions racing a Postgres shutdown: ${accepted.size} of ${replies.length} accepted, the rest UNAVAILABLE`);
    await startPostgres();
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ id: string; jobs: number; queued: number }>(
        `SELECT g.id, (SELECT count(*)::int FROM pgboss.job j WHERE j.data->>'jobId' = g.id::text) AS jobs,
                (SELECT count(*)::int FROM job_events e WHERE e.job_id = g.id AND e.step = 'QUEUED') AS queued
         FROM jobs g WHERE g.params->>'prompt' LIKE 'racing the shutdown %'`,
      );
      // Each generation the database kept has its job and its QUEUED event; each one it kept was answered as accepted.
      expect(rows.every((r) => r.jobs === 1 && r.queued === 1)).toBe(true);
      for (const id of accepted) expect(rows.map((r) => r.id)).toContain(id);
    } finally {
      await db.end();
    }
  });
});
