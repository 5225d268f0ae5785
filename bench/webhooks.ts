/**
 * Webhook figures: `npm run bench:webhooks [-- --events 2000 --deliveries 500]`. On a throwaway
 * embedded Postgres, prints
 * - what the delivery trigger adds to appending a job event (the hot path of every step), with
 *   no subscriptions, with a webhook that does not want the event, and with a PROGRESS webhook
 *   (throttled), beside the same appends with the trigger disabled;
 * - delivery latency, event commit → the receiver has it, one delivery at a time;
 * - deliveries/s through the whole path (trigger, outbox, queue, signing, POST, log) to a local
 *   receiver, beside bare signed POSTs to the same receiver at the same concurrency.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseCommandLine } from '../src/cli/command-line.js';

const USAGE = `usage: npm run bench:webhooks [-- --events 2000] [--deliveries 500]
  --events N       job events appended for each trigger measurement (default 2000)
  --deliveries N   deliveries for the throughput measurement (default 500)
  --help           this text`;
const { values } = parseCommandLine(USAGE, { events: { type: 'string', default: '2000' }, deliveries: { type: 'string', default: '500' } });
// Loaded once the command line is read, so that --help does not wait for the whole service.
const [{ startKiln }, { loadConfig }, { startEmbeddedPostgres }, { appendEvent }, { createLogger }, { newSecret, signatureHeader }] = await Promise.all([
  import('../src/app.js'),
  import('../src/config.js'),
  import('../src/db/embedded-postgres.js'),
  import('../src/events/event-log.js'),
  import('../src/log.js'),
  import('../src/webhooks/signing.js'),
]);
const EVENTS = Number(values.events);
const DELIVERIES = Number(values.deliveries);
const CONCURRENCY = 8;
const log = createLogger('warn');
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-bench-webhooks-'));
await fs.chmod(dir, 0o755);
const pg = await startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: 57000 + (process.pid % 1000), log });
const url = await pg.url('kiln');

// The receiver: answers 204 at once and notes when each delivery arrived.
const arrived = new Map<string, number>();
let onArrival = () => {};
const receiver = http.createServer(async (req, res) => {
  for await (const _ of req);
  arrived.set(String(req.headers['webhook-id']), performance.now());
  res.writeHead(204).end();
  onArrival();
});
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
const arrivals = (n: number) =>
  new Promise<void>((resolve) => {
    onArrival = () => arrived.size >= n && resolve();
    onArrival();
  });

const config = loadConfig({ DATABASE_URL: url, KILN_DATA_DIR: dir, PORT: '0', KILN_LOG_LEVEL: 'warn', KILN_WEBHOOK_ALLOW: 'loopback', KILN_WEBHOOK_CONCURRENCY: String(CONCURRENCY) });
const kiln = await startKiln(config, log, { kinds: [] });
const { ds } = kiln;

const newJob = async (events?: string) => {
  const [{ id }] = await ds.query(`INSERT INTO jobs (id, kind, queue, status, current_step, params) VALUES (gen_random_uuid(), 'image', 'image.builtin', 'RUNNING', 'QUEUED', '{}') RETURNING id`);
  if (events) await ds.query('INSERT INTO job_webhooks (job_id, url, events) VALUES ($1, $2, $3)', [id, hookUrl, [events]]);
  return id as string;
};
const ROUNDS = 5;
const perRound = Math.ceil(EVENTS / ROUNDS);
/** µs per append of a run of RUNNING events to a fresh job. */
const perAppend = async (jobId: string) => {
  const t0 = performance.now();
  for (let i = 1; i <= perRound; i++) await appendEvent(ds.manager, jobId, { step: 'GENERATING', status: 'RUNNING', attempt: 1, progress: i / perRound, stepIndex: i, stepCount: perRound });
  return ((performance.now() - t0) * 1000) / perRound;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// 1. The trigger's cost on an event append; the settings take turns, so the machine's drift hits all alike.
await perAppend(await newJob()); // warm-up
const cost: Record<'bare' | 'quiet' | 'unwanted' | 'progress', number[]> = { bare: [], quiet: [], unwanted: [], progress: [] };
for (let round = 0; round < ROUNDS; round++) {
  await ds.query('ALTER TABLE job_events DISABLE TRIGGER job_events_webhooks');
  cost.bare.push(await perAppend(await newJob()));
  await ds.query('ALTER TABLE job_events ENABLE TRIGGER job_events_webhooks');
  cost.quiet.push(await perAppend(await newJob()));
  cost.unwanted.push(await perAppend(await newJob('COMPLETED')));
  cost.progress.push(await perAppend(await newJob('PROGRESS')));
}
console.log(
  `event append, µs each (median of ${ROUNDS} runs of ${perRound}): trigger disabled ${median(cost.bare).toFixed(0)}, no subscriptions ${median(cost.quiet).toFixed(0)}, ` +
    `a webhook not wanting it ${median(cost.unwanted).toFixed(0)}, a PROGRESS webhook ${median(cost.progress).toFixed(0)}`,
);
// What the PROGRESS webhooks were sent, out of the way before the next figures.
const [{ sent }] = await ds.query('SELECT count(*)::int AS sent FROM webhook_deliveries');
await arrivals(sent);

// 2. Latency: one job ends, its delivery arrives; one at a time.
const latency: number[] = [];
for (let i = 0; i < 50; i++) {
  const jobId = await newJob('FAILED');
  const before = arrived.size;
  const t0 = performance.now();
  await appendEvent(ds.manager, jobId, { step: 'FAILED', status: 'FAILED', attempt: 1, progress: 0 });
  await arrivals(before + 1);
  latency.push(performance.now() - t0);
}
latency.sort((a, b) => a - b);
console.log(`delivery latency, event commit → received: p50 ${latency[25]!.toFixed(1)} ms, max ${latency.at(-1)!.toFixed(1)} ms`);

// 3. Throughput: DELIVERIES jobs end in one transaction, each with its own webhook.
const ids: string[] = [];
for (let i = 0; i < DELIVERIES; i++) ids.push(await newJob());
await ds.query(`INSERT INTO job_webhooks (job_id, url, events) SELECT unnest($1::uuid[]), $2, '{CANCELLED}'`, [ids, hookUrl]);
const start = arrived.size;
let t0 = performance.now();
await ds.transaction(async (em) => {
  for (const id of ids) await appendEvent(em, id, { step: 'CANCELLED', status: 'CANCELLED', attempt: 0, progress: 0 });
});
await arrivals(start + DELIVERIES);
const kilnRate = DELIVERIES / ((performance.now() - t0) / 1000);
console.log(`deliveries/s through Kiln (trigger → outbox → queue → signed POST → log), concurrency ${CONCURRENCY}: ${kilnRate.toFixed(0)}`);

// The anchor: the same count of signed POSTs of a body of the same size, CONCURRENCY at a time.
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const secret = newSecret();
const body = JSON.stringify({ type: 'job.cancelled', version: 1, data: { job: { id: ids[0], params: {} }, pad: 'x'.repeat(600) } });
let next = 0;
t0 = performance.now();
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (next < DELIVERIES) {
      next++;
      const id = crypto.randomUUID();
      const ts = Math.floor(Date.now() / 1000);
      await new Promise<void>((resolve, reject) => {
        const req = http.request(hookUrl, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader([secret], id, ts, body) } }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        req.end(body);
      });
    }
  }),
);
const rawRate = DELIVERIES / ((performance.now() - t0) / 1000);
console.log(`bare signed POSTs/s to the same receiver, concurrency ${CONCURRENCY}: ${rawRate.toFixed(0)}`);
console.log(`ratio, Kiln / bare POSTs: ${(kilnRate / rawRate).toFixed(2)}`);

agent.destroy();
await kiln.stop();
receiver.closeAllConnections();
receiver.close();
await pg.stop();
await fs.rm(dir, { recursive: true, force: true });
