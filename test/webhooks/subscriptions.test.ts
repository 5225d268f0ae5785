import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { KINDS } from '../../src/kinds/registry.js';
import { echoKind } from '../support/echo-kind/kind.js';
import { ok } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { startReceiver, until } from '../support/webhook-receiver.js';

const CREATE = /* GraphQL */ `
  mutation ($url: String!, $events: [WebhookEvent!], $kinds: [String!]) {
    createWebhook(url: $url, events: $events, kinds: $kinds) { secret webhook { id } }
  }
`;
const WEBHOOK = /* GraphQL */ `
  query ($id: ID!) {
    webhook(id: $id) {
      id enabled disabledAt disabledReason failureStreak
      deliveries { edges { node { id status attemptCount lastError attempts { statusCode } job { id } } } }
    }
  }
`;
const GENERATE = /* GraphQL */ `
  mutation { generate(input: { prompt: "a kiln", width: 64, height: 64, steps: 2 }) { id } }
`;
const JOB = /* GraphQL */ `
  query ($id: ID!) { job(id: $id) { status webhookDeliveries { id webhookId } } }
`;

/** Subscriptions (createWebhook): every job's events, their own secret, a failure streak that disables them. */
describe('webhook subscriptions', () => {
  let k: TestKiln;
  beforeAll(async () => {
    k = await startTestKiln({ KILN_WEBHOOK_ALLOW: 'loopback', KILN_WEBHOOK_RETRY_DELAY_MS: '100', KILN_WEBHOOK_DISABLE_AFTER: '3' }, [], { kinds: [...KINDS, echoKind] });
  });
  afterAll(() => k?.stop());
  const create = async (vars: Record<string, unknown>) => {
    const { createWebhook } = await ok(k.gql(CREATE, vars));
    onTestFinished(async () => void (await k.gql('mutation ($id: ID!) { deleteWebhook(id: $id) }', { id: createWebhook.webhook.id })));
    return createWebhook.webhook.id as string;
  };
  const webhook = async (id: string) => (await ok(k.gql(WEBHOOK, { id }))).webhook;
  const finishedJob = (id: string) => until(async () => (await ok(k.gql(JOB, { id }))).job, (j) => j.status === 'COMPLETED');

  it('hear the jobs of the kinds they name, or of every kind', async () => {
    const hooks = await startReceiver();
    onTestFinished(() => hooks.close());
    const images = await create({ url: `${hooks.url}?images`, kinds: ['image'] });
    const everything = await create({ url: `${hooks.url}?all` });
    const echoes = await create({ url: `${hooks.url}?echo`, kinds: ['echo'] });
    const { generate } = await ok(k.gql(GENERATE));
    await hooks.waitFor((r) => r.json.data.job.id === generate.id, 2);
    const job = await finishedJob(generate.id);
    expect(job.webhookDeliveries.map((d: { webhookId: string }) => d.webhookId).sort()).toEqual([images, everything].sort());
    expect((await webhook(echoes)).deliveries.edges).toEqual([]);
  });

  it('disable a webhook that keeps failing, say why, and deliver again once it is enabled', async () => {
    const hooks = await startReceiver();
    onTestFinished(() => hooks.close());
    hooks.answer = () => ({ status: 500 });
    const id = await create({ url: hooks.url, events: ['COMPLETED'] });

    const { generate } = await ok(k.gql(GENERATE));
    const disabled = await until(() => webhook(id), (w) => !w.enabled);
    expect(disabled).toMatchObject({
      failureStreak: 3,
      disabledReason: 'disabled after 3 failed attempts in a row (KILN_WEBHOOK_DISABLE_AFTER); the last: HTTP 500',
    });
    const [delivery] = disabled.deliveries.edges.map((e: { node: unknown }) => e.node);
    expect(delivery).toMatchObject({
      status: 'FAILED',
      attemptCount: 3,
      lastError: `HTTP 500; the webhook was ${disabled.disabledReason}`,
      attempts: [{ statusCode: 500 }, { statusCode: 500 }, { statusCode: 500 }],
      job: { id: generate.id },
    });
    expect(hooks.received.map((r) => r.id)).toEqual([delivery.id, delivery.id, delivery.id]);

    // Disabled, it hears nothing of new jobs, and cannot be redelivered to.
    const { generate: later } = await ok(k.gql(GENERATE));
    expect((await finishedJob(later.id)).webhookDeliveries).toEqual([]);
    const refused = await k.gql('mutation ($id: ID!) { redeliverWebhook(id: $id) { id } }', { id: delivery.id });
    expect(refused.errors?.[0]).toMatchObject({ extensions: { code: 'CONFLICT' }, message: expect.stringContaining('is disabled') });

    hooks.answer = () => ({ status: 200 });
    const { enableWebhook } = await ok(k.gql('mutation ($id: ID!) { enableWebhook(id: $id) { enabled failureStreak disabledReason } }', { id }));
    expect(enableWebhook).toEqual({ enabled: true, failureStreak: 0, disabledReason: null });
    const { redeliverWebhook } = await ok(k.gql('mutation ($id: ID!) { redeliverWebhook(id: $id) { id status } }', { id: delivery.id }));
    expect(redeliverWebhook).toEqual({ id: delivery.id, status: 'PENDING' });
    await hooks.waitFor((r) => r.status === 200);
    const after = await until(() => webhook(id), (w) => w.deliveries.edges[0].node.status === 'DELIVERED');
    expect(after.deliveries.edges[0].node).toMatchObject({ id: delivery.id, attemptCount: 4, lastError: null, attempts: [{ statusCode: 500 }, { statusCode: 500 }, { statusCode: 500 }, { statusCode: 200 }] });
    expect(hooks.received.map((r) => r.id)).toEqual([delivery.id, delivery.id, delivery.id, delivery.id]);
    // A delivered delivery may be sent again; one under way may not.
    const again = await k.gql('mutation ($id: ID!) { redeliverWebhook(id: $id) { id } }', { id: delivery.id });
    expect(again.errors).toBeUndefined();
    const twice = await k.gql('mutation ($id: ID!) { redeliverWebhook(id: $id) { id } }', { id: delivery.id });
    expect(twice.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });

  it('are listed, and deleted with their delivery log', async () => {
    const hooks = await startReceiver();
    onTestFinished(() => hooks.close());
    const { createWebhook } = await ok(k.gql(CREATE, { url: hooks.url }));
    const { webhooks } = await ok(k.gql('{ webhooks { id url events kinds enabled } }'));
    expect(webhooks).toContainEqual({ id: createWebhook.webhook.id, url: hooks.url, events: ['COMPLETED', 'FAILED', 'CANCELLED'], kinds: null, enabled: true });
    expect(createWebhook.secret).toMatch(/^whsec_/);
    const { generate } = await ok(k.gql(GENERATE));
    await hooks.waitFor((r) => r.json.data.job.id === generate.id);
    await until(async () => (await k.kiln.ds.query('SELECT status FROM webhook_deliveries WHERE endpoint_id = $1', [createWebhook.webhook.id]))[0]?.status, (s) => s === 'DELIVERED');
    expect(await ok(k.gql('mutation ($id: ID!) { deleteWebhook(id: $id) }', { id: createWebhook.webhook.id }))).toEqual({ deleteWebhook: createWebhook.webhook.id });
    expect(await ok(k.gql(WEBHOOK, { id: createWebhook.webhook.id }))).toEqual({ webhook: null });
    expect(await k.kiln.ds.query('SELECT count(*)::int AS n FROM webhook_deliveries WHERE endpoint_id = $1', [createWebhook.webhook.id])).toEqual([{ n: 0 }]);
    const gone = await k.gql('mutation ($id: ID!) { deleteWebhook(id: $id) }', { id: createWebhook.webhook.id });
    expect(gone.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('refuse URLs that are not http(s), unknown kinds and empty event lists, naming the argument', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ url: 'gopher://example.com' }, 'url'],
      [{ url: 'https://example.com', kinds: ['sculpture'] }, 'kinds'],
      [{ url: 'https://example.com', kinds: [] }, 'kinds'],
      [{ url: 'https://example.com', events: [] }, 'events'],
    ];
    for (const [vars, field] of cases) {
      const res = await k.gql(CREATE, vars);
      expect(res.errors?.[0]?.extensions, JSON.stringify(vars)).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
    expect(await k.kiln.ds.query('SELECT count(*)::int AS n FROM webhook_endpoints')).toEqual([{ n: 0 }]);
  });
});
