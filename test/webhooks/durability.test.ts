import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PgBoss } from 'pg-boss';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { createDataSource } from '../../src/db/data-source.js';
import { cancelJob } from '../../src/jobs/cancel.js';
import { createTestDatabase } from '../support/database.js';
import { ok } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { freePort } from '../support/processes.js';
import { startReceiver, until, verify } from '../support/webhook-receiver.js';

const GENERATE = /* GraphQL */ `
  mutation ($input: GenerateInput!) { generate(input: $input) { id } }
`;
const LOG = /* GraphQL */ `
  query ($id: ID!) { job(id: $id) { status webhookDeliveries { id status attemptCount lastError attempts { statusCode error sender } } } }
`;
const input = (webhook: Record<string, unknown>) => ({ input: { prompt: 'a kiln', width: 64, height: 64, steps: 2, webhook } });

/** Deliveries are rows and queue jobs in Postgres: no process holds one that another cannot finish. */
describe('webhook deliveries across restarts', () => {
  const kilns: TestKiln[] = [];
  const dataDir = fs.mkdtemp(path.join(os.tmpdir(), 'kiln-webhooks-'));
  const start = async (databaseUrl: string, env: Record<string, string> = {}, args: string[] = []) => {
    const k = await startTestKiln({ DATABASE_URL: databaseUrl, KILN_DATA_DIR: await dataDir, KILN_WEBHOOK_RETRY_DELAY_MS: '200', KILN_WEBHOOK_ALLOW: 'loopback', ...env }, args);
    kilns.push(k);
    return k;
  };
  afterAll(async () => {
    for (const k of kilns) await k.stop().catch(() => undefined);
    await fs.rm(await dataDir, { recursive: true, force: true });
  });

  it('delivers to a receiver that was down across a Kiln restart, under the webhook-id of its first attempts', async () => {
    const db = await createTestDatabase();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/hooks`;
    const first = await start(db);
    const { generate } = await ok(first.gql(GENERATE, input({ url })));
    const failing = await until(
      async () => (await ok(first.gql(LOG, { id: generate.id }))).job,
      (job) => job.webhookDeliveries[0]?.attemptCount >= 2,
    );
    expect(failing.webhookDeliveries[0]).toMatchObject({ status: 'PENDING', lastError: expect.stringMatching(/^ECONNREFUSED/) });
    await first.stop();

    const hooks = await startReceiver(port);
    onTestFinished(() => hooks.close());
    const second = await start(db);
    const [r] = await hooks.waitFor((r) => r.json.data.job.id === generate.id);
    expect(r!.id).toBe(failing.webhookDeliveries[0].id);
    const { jobWebhookSecret } = await ok(second.gql('{ jobWebhookSecret { secret } }'));
    expect(verify(jobWebhookSecret.secret, r!)).toBe(true);
    const job = await until(
      async () => (await ok(second.gql(LOG, { id: generate.id }))).job,
      (j) => j.webhookDeliveries[0]?.status === 'DELIVERED',
    );
    const attempts = job.webhookDeliveries[0].attempts;
    expect(attempts.at(-1).statusCode).toBe(200);
    expect(attempts.slice(0, -1).every((a: { error: string }) => /^ECONNREFUSED/.test(a.error))).toBe(true);
    expect(hooks.received).toHaveLength(1);
    await second.stop();
  });

  it('delivers an event committed while no Kiln process was running (the event and its delivery are one transaction)', async () => {
    const db = await createTestDatabase();
    const hooks = await startReceiver();
    onTestFinished(() => hooks.close());
    // An API alone: the job stays PENDING.
    const api = await start(db, {}, ['--role', 'api']);
    const { generate } = await ok(api.gql(GENERATE, input({ url: hooks.url, events: ['CANCELLED'] })));
    await api.stop();

    // Some other program cancels it, with none of Kiln's processes running to hear about it.
    const ds = createDataSource({ url: db, poolMax: 2, applicationName: 'kiln-test' });
    await ds.initialize();
    const boss = new PgBoss({ connectionString: db, supervise: false, schedule: false });
    await boss.start();
    await cancelJob({ ds, boss }, generate.id);
    await boss.stop({ graceful: false, close: true });
    await ds.destroy();

    const again = await start(db, {}, ['--role', 'api']);
    const [r] = await hooks.waitFor((r) => r.json.data.job.id === generate.id);
    expect(r!.json).toMatchObject({ type: 'job.cancelled', data: { job: { status: 'CANCELLED' }, event: { step: 'CANCELLED' } } });
    const { job } = await ok(again.gql(LOG, { id: generate.id }));
    expect(job.webhookDeliveries).toMatchObject([{ id: r!.id }]);
  });

  it('refuses private and loopback addresses, resolved when the delivery is sent, unless KILN_WEBHOOK_ALLOW names them', async () => {
    const hooks = await startReceiver();
    onTestFinished(() => hooks.close());
    const strict = await start(await createTestDatabase(), { KILN_WEBHOOK_ALLOW: '' });
    const refused = async (url: string) => {
      const { generate } = await ok(strict.gql(GENERATE, input({ url })));
      return until(
        async () => (await ok(strict.gql(LOG, { id: generate.id }))).job.webhookDeliveries[0],
        (d) => d?.status === 'FAILED',
      );
    };
    const byName = await refused(`http://localhost:${hooks.port}/hooks`);
    expect(byName).toMatchObject({ attemptCount: 1, lastError: expect.stringMatching(/^refused: localhost resolves to (127\.0\.0\.1|::1) is a loopback address/) });
    expect(await refused(`http://127.0.0.1:${hooks.port}/hooks`)).toMatchObject({ attemptCount: 1, lastError: 'refused: 127.0.0.1 is a loopback address (KILN_WEBHOOK_ALLOW does not name it)' });
    expect((await refused(`http://[::ffff:7f00:1]:${hooks.port}/hooks`)).lastError).toMatch(/is a loopback address/);
    expect((await refused(`http://169.254.169.254/latest/meta-data`)).lastError).toMatch(/169\.254\.169\.254 is a link-local address/);
    expect(hooks.received).toHaveLength(0);

    // The same Kiln with the receiver's address allowed reaches it.
    await strict.stop();
    const allowing = await start(strict.databaseUrl!, { KILN_WEBHOOK_ALLOW: '127.0.0.1' });
    const { generate } = await ok(allowing.gql(GENERATE, input({ url: hooks.url })));
    await hooks.waitFor((r) => r.json.data.job.id === generate.id);
  });

  it('refuses webhook URLs that are not http(s) at submission, naming the field', async () => {
    const api = kilns.at(-1)!;
    for (const url of ['file:///etc/passwd', 'ftp://example.com/x', 'not a url', 'https://user:pw@example.com/hook']) {
      const res = await api.gql(GENERATE, input({ url }));
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.webhook.url' });
    }
    const res = await api.gql(GENERATE, input({ url: 'https://example.com/hook', events: [] }));
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.webhook.events' });
  });
});
