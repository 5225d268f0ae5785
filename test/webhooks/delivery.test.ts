import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { jobPolicy } from '../../src/jobs/queue.js';
import { submitJobs } from '../../src/jobs/submit.js';
import { KINDS } from '../../src/kinds/registry.js';
import { echoKind } from '../support/echo-kind/kind.js';
import { ok } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { startReceiver, until, verify } from '../support/webhook-receiver.js';

const GENERATE = /* GraphQL */ `
  mutation ($input: GenerateInput!) { generate(input: $input) { id } }
`;
const LOG = /* GraphQL */ `
  query ($id: ID!) {
    job(id: $id) {
      status
      webhook { url events }
      webhookDeliveries {
        id event eventCursor status attemptCount url webhookId nextAttemptAt lastStatusCode lastError
        attempts { attempt statusCode startedAt durationMs error responseBody nextRetryAt }
      }
    }
  }
`;
const CREATE = /* GraphQL */ `
  mutation ($url: String!, $events: [WebhookEvent!], $kinds: [String!]) {
    createWebhook(url: $url, events: $events, kinds: $kinds) { secret webhook { id url events kinds enabled } }
  }
`;

/** Deliveries go through the queue, a real HTTP server receives them, the log says what happened. */
describe('webhook deliveries', () => {
  let k: TestKiln;
  const RETRY_DELAY_MS = 300;

  beforeAll(async () => {
    k = await startTestKiln(
      { KILN_WEBHOOK_ALLOW: 'loopback', KILN_WEBHOOK_RETRY_DELAY_MS: String(RETRY_DELAY_MS), KILN_WEBHOOK_TIMEOUT_MS: '1000' },
      [],
      { kinds: [...KINDS, echoKind] },
    );
  });
  afterAll(() => k?.stop());

  const receiver = async () => {
    const r = await startReceiver();
    onTestFinished(() => r.close());
    return r;
  };
  const generate = async (webhook?: Record<string, unknown>) =>
    (await ok(k.gql(GENERATE, { input: { prompt: 'a kiln at night', width: 64, height: 64, steps: 2, ...(webhook ? { webhook } : {}) } }))).generate.id as string;
  const log = async (id: string) => (await ok(k.gql(LOG, { id }))).job;
  /** The job's log once every delivery in it is finished. */
  const settledLog = (id: string, count = 1) =>
    until(() => log(id), (job) => job.webhookDeliveries.length >= count && job.webhookDeliveries.every((d: { status: string }) => d.status !== 'PENDING'));
  const forJob = (id: string) => (r: { json: any }) => r.json.data.job.id === id;

  it("POSTs how a job ended to its own webhook, signed with the job webhook secret, with the job as the API shows it", async () => {
    const hooks = await receiver();
    // The answer's body is read up to 4 KiB, and that much kept in the log.
    hooks.answer = () => ({ status: 200, body: 'x'.repeat(100_000) });
    const { jobWebhookSecret } = await ok(k.gql('{ jobWebhookSecret { secret } }'));
    expect(jobWebhookSecret.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const id = await generate({ url: hooks.url });

    const [r] = await hooks.waitFor(forJob(id));
    expect(verify(jobWebhookSecret.secret, r!)).toBe(true);
    expect(verify(`whsec_${Buffer.alloc(32, 7).toString('base64')}`, r!)).toBe(false);
    expect(verify(jobWebhookSecret.secret, { ...r!, body: r!.body.replace('COMPLETED', 'FAILED') })).toBe(false);
    expect(r!.json).toMatchObject({
      type: 'job.completed',
      version: 1,
      timestamp: r!.json.data.event.at,
      data: {
        job: { id, kind: 'image', status: 'COMPLETED', progress: 1, error: null, params: { prompt: 'a kiln at night', width: 64, height: 64, steps: 2 } },
        event: { step: 'COMPLETED', status: 'COMPLETED', attempt: 1 },
      },
    });
    const { generation } = await ok(k.gql(`query ($id: ID!) { generation(id: $id) { images { sha256 bytes width height seed } } }`, { id }));
    const [output] = r!.json.data.job.outputs;
    expect(output).toMatchObject({ index: 0, mediaType: 'image', mimeType: 'image/png', ...generation.images[0] });
    const png = await fetch(output.url);
    expect(png.status).toBe(200);
    expect(Buffer.from(await png.arrayBuffer()).length).toBe(output.bytes);

    const job = await settledLog(id);
    expect(job.webhook).toEqual({ url: hooks.url, events: ['COMPLETED', 'FAILED', 'CANCELLED'] });
    expect(job.webhookDeliveries).toMatchObject([
      { id: r!.id, event: 'COMPLETED', status: 'DELIVERED', attemptCount: 1, url: hooks.url, webhookId: null, nextAttemptAt: null, lastStatusCode: 200, lastError: null },
    ]);
    expect(job.webhookDeliveries[0].attempts).toMatchObject([{ attempt: 1, statusCode: 200, error: null, nextRetryAt: null }]);
    expect(job.webhookDeliveries[0].attempts[0].responseBody).toBe('x'.repeat(4096));
    // Only the terminal event was asked for (the default), and it came once.
    expect(hooks.received.filter(forJob(id))).toHaveLength(1);
  });

  it('retries a receiver that fails twice with growing delays, under one webhook-id, and logs what it saw', async () => {
    const hooks = await receiver();
    const answers = [500, 502, 200];
    hooks.answer = (_, n) => ({ status: answers[n] ?? 200, body: `answer ${n + 1}` });
    const id = await generate({ url: hooks.url, events: ['COMPLETED'] });

    const seen = await hooks.waitFor(forJob(id), 3);
    expect(new Set(seen.map((r) => r.id)).size).toBe(1);
    expect(seen.map((r) => r.status)).toEqual([500, 502, 200]);
    const [first, second] = [seen[1]!.at - seen[0]!.at, seen[2]!.at - seen[1]!.at];
    // The first retry after the delay (±20 %), the second after twice that.
    expect(first).toBeGreaterThanOrEqual(RETRY_DELAY_MS * 0.8);
    expect(second).toBeGreaterThan(first);

    const job = await settledLog(id);
    const [delivery] = job.webhookDeliveries;
    expect(delivery).toMatchObject({ id: seen[0]!.id, status: 'DELIVERED', attemptCount: 3, lastStatusCode: 200 });
    expect(delivery.attempts.map((a: { statusCode: number }) => a.statusCode)).toEqual(seen.map((r) => r.status));
    expect(delivery.attempts.map((a: { responseBody: string }) => a.responseBody)).toEqual(['answer 1', 'answer 2', 'answer 3']);
    expect(delivery.attempts.map((a: { error: string | null }) => a.error)).toEqual(['HTTP 500', 'HTTP 502', null]);
    const waited = delivery.attempts
      .slice(0, 2)
      .map((a: { startedAt: string; durationMs: number; nextRetryAt: string }) => Date.parse(a.nextRetryAt) - Date.parse(a.startedAt) - a.durationMs);
    expect(waited[0]).toBeGreaterThanOrEqual(RETRY_DELAY_MS * 0.8);
    expect(waited[1]).toBeGreaterThan(waited[0]);
    expect(delivery.attempts[2].nextRetryAt).toBeNull();
    // Each attempt is logged where the receiver saw it, and took as long as the log says.
    for (const [i, a] of delivery.attempts.entries()) expect(Math.abs(Date.parse(a.startedAt) + a.durationMs - seen[i]!.at)).toBeLessThan(1000);
  });

  it('waits as long as a 429 asks with Retry-After', async () => {
    const hooks = await receiver();
    hooks.answer = (_, n) => (n === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 204 });
    const id = await generate({ url: hooks.url });
    const seen = await hooks.waitFor(forJob(id), 2);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(950);
    const job = await settledLog(id);
    expect(job.webhookDeliveries[0]).toMatchObject({ status: 'DELIVERED', attemptCount: 2, lastStatusCode: 204 });
  });

  it('stops at a 4xx other than 408 and 429: the delivery fails at once, with the answer kept', async () => {
    const hooks = await receiver();
    hooks.answer = () => ({ status: 410, body: 'no such hook' });
    const id = await generate({ url: hooks.url });
    const job = await settledLog(id);
    expect(job.webhookDeliveries).toMatchObject([{ status: 'FAILED', attemptCount: 1, lastStatusCode: 410, lastError: 'HTTP 410', nextAttemptAt: null }]);
    expect(job.webhookDeliveries[0].attempts).toMatchObject([{ statusCode: 410, responseBody: 'no such hook', nextRetryAt: null }]);
    expect(hooks.received.filter(forJob(id))).toHaveLength(1);
  });

  it('gives up once its retry window has passed', async () => {
    const hooks = await receiver();
    hooks.answer = () => ({ status: 503 });
    const id = await generate({ url: hooks.url });
    await hooks.waitFor(forJob(id));
    // The window closes (backdated rather than waited for): the next failure is the last.
    await k.kiln.ds.query(`UPDATE webhook_deliveries SET give_up_at = now() WHERE job_id = $1`, [id]);
    const job = await settledLog(id);
    expect(job.webhookDeliveries[0]).toMatchObject({
      status: 'FAILED',
      nextAttemptAt: null,
      lastError: 'HTTP 503; no retry left (retries end 86400 s after the event or the redelivery, KILN_WEBHOOK_RETRY_FOR_S)',
    });
    expect(job.webhookDeliveries[0].attempts.at(-1).nextRetryAt).toBeNull();
  });

  it('gives up on an attempt past its timeout and tries again; follows no redirect', async () => {
    const hooks = await receiver();
    const elsewhere = await receiver();
    hooks.answer = (r, n) => (r.json.type !== 'job.completed' ? { status: 200 } : n === 0 ? { status: 200, delayMs: 8000 } : { status: 302, headers: { location: elsewhere.url } });
    const id = await generate({ url: hooks.url });
    const job = await settledLog(id);
    expect(job.webhookDeliveries[0]).toMatchObject({ status: 'FAILED', attemptCount: 2, lastStatusCode: 302, lastError: 'HTTP 302 (redirects are not followed)' });
    const [late, redirected] = job.webhookDeliveries[0].attempts;
    expect(late).toMatchObject({ statusCode: null, error: 'timed out after 1000 ms', nextRetryAt: expect.any(String) });
    // Cut at its 1 s timeout, not answered when the receiver got round to it (8 s).
    expect(late.durationMs).toBeGreaterThanOrEqual(1000);
    expect(late.durationMs).toBeLessThan(8000);
    expect(redirected).toMatchObject({ statusCode: 302, nextRetryAt: null });
    expect(elsewhere.received).toHaveLength(0);
  });

  it("tells each job of a batch's at its own webhook", async () => {
    const hooks = await receiver();
    const input = (n: number) => ({ prompt: `kiln ${n}`, width: 64, height: 64, steps: 1, webhook: { url: `${hooks.url}?n=${n}` } });
    const { generateBatch } = await ok(k.gql('mutation ($inputs: [GenerateInput!]!) { generateBatch(inputs: $inputs) { generations { id webhook { url } } } }', { inputs: [input(0), input(1)] }));
    expect(generateBatch.generations.map((g: { webhook: { url: string } }) => g.webhook.url)).toEqual([`${hooks.url}?n=0`, `${hooks.url}?n=1`]);
    const ids = generateBatch.generations.map((g: { id: string }) => g.id);
    const seen = await hooks.waitFor(() => true, 2);
    expect(seen.map((r) => [r.json.data.job.id, r.json.data.job.params.prompt]).sort()).toEqual([
      [ids[0], 'kiln 0'],
      [ids[1], 'kiln 1'],
    ].sort());
  });

  it('signs with the old secret as well while a rotation overlaps, and with the new one alone after', async () => {
    const hooks = await receiver();
    const { createWebhook } = await ok(k.gql(CREATE, { url: hooks.url, events: ['COMPLETED'], kinds: ['image'] }));
    onTestFinished(async () => void (await k.gql('mutation ($id: ID!) { deleteWebhook(id: $id) }', { id: createWebhook.webhook.id })));
    expect(createWebhook.webhook).toMatchObject({ url: hooks.url, events: ['COMPLETED'], kinds: ['image'], enabled: true });
    const old = createWebhook.secret as string;
    const signatures = (r: { signature: string }) => r.signature.split(' ').length;

    const before = await generate();
    const [r1] = await hooks.waitFor(forJob(before));
    expect([verify(old, r1!), signatures(r1!)]).toEqual([true, 1]);

    const { rotateWebhookSecret } = await ok(
      k.gql('mutation ($id: ID!) { rotateWebhookSecret(id: $id) { secret webhook { previousSecretExpiresAt secretRotatedAt } } }', { id: createWebhook.webhook.id }),
    );
    const fresh = rotateWebhookSecret.secret as string;
    expect(fresh).not.toBe(old);
    expect(Date.parse(rotateWebhookSecret.webhook.previousSecretExpiresAt) - Date.parse(rotateWebhookSecret.webhook.secretRotatedAt)).toBe(24 * 3600 * 1000);
    const during = await generate();
    const [r2] = await hooks.waitFor(forJob(during));
    expect([verify(old, r2!), verify(fresh, r2!), signatures(r2!)]).toEqual([true, true, 2]);

    // The overlap ends (backdated rather than waited for).
    await k.kiln.ds.query(`UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1`, [createWebhook.webhook.id]);
    const after = await generate();
    const [r3] = await hooks.waitFor(forJob(after));
    expect([verify(old, r3!), verify(fresh, r3!), signatures(r3!)]).toEqual([false, true, 1]);
    const { webhook } = await ok(k.gql('query ($id: ID!) { webhook(id: $id) { previousSecretExpiresAt } }', { id: createWebhook.webhook.id }));
    expect(webhook.previousSecretExpiresAt).toBeNull();
  });

  it("sends STARTED once per attempt and PROGRESS at most once per 500 ms of the job's events", async () => {
    const hooks = await receiver();
    const { createWebhook } = await ok(k.gql(CREATE, { url: hooks.url, events: ['STARTED', 'PROGRESS', 'COMPLETED'], kinds: ['echo'] }));
    onTestFinished(async () => void (await k.gql('mutation ($id: ID!) { deleteWebhook(id: $id) }', { id: createWebhook.webhook.id })));
    // 40 steps 40 ms apart, after a first attempt that fails at its first step.
    const policy = jobPolicy({ maxRetries: 1, retryDelayMs: 0, jobTimeoutSeconds: 60, heartbeatSeconds: 10 });
    const { jobs } = await submitJobs(
      { ds: k.kiln.ds, boss: k.kiln.boss, jobPolicy: () => policy },
      { kind: echoKind, inputs: [{ input: { text: 'throttle', units: 40, stepMs: 40, failAttempts: 1 }, options: {}, field: 'input' }] },
    );
    const id = jobs[0]!.id;
    await hooks.waitFor((r) => forJob(id)(r) && r.json.type === 'job.completed');
    const job = await settledLog(id, 3);
    expect(job.status).toBe('COMPLETED');
    const seen = hooks.received.filter(forJob(id));
    expect(new Set(seen.map((r) => r.id)).size).toBe(seen.length);
    expect(seen.map((r) => r.id).sort()).toEqual(job.webhookDeliveries.map((d: { id: string }) => d.id).sort());

    const ofType = (type: string) => seen.filter((r) => r.json.type === type).map((r) => r.json.data.event).sort((a, b) => Number(a.cursor) - Number(b.cursor));
    expect(ofType('job.started').map((e) => [e.attempt, e.step])).toEqual([
      [1, 'LOADING_MODEL'],
      [2, 'LOADING_MODEL'],
    ]);
    const progress = ofType('job.progress');
    const { job: withEvents } = await ok(k.gql('query ($id: ID!) { job(id: $id) { events { status attempt } } }', { id }));
    const running = withEvents.events.filter((e: { status: string; attempt: number }) => e.status === 'RUNNING' && e.attempt === 2).length;
    expect(running).toBe(42);
    // About 1.6 s of steps: a PROGRESS at the first, then no closer than 500 ms to the one before.
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.length).toBeLessThanOrEqual(5);
    for (let i = 1; i < progress.length; i++) expect(Date.parse(progress[i].at) - Date.parse(progress[i - 1].at)).toBeGreaterThanOrEqual(500);
    expect(progress.every((e) => e.status === 'RUNNING' && e.attempt === 2)).toBe(true);
    expect(ofType('job.completed')).toHaveLength(1);
  });
});
