import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/models/safetensors.js';
import { collect, modelIdNamed, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { ATTEMPTS, GENERATE, PROGRESS } from '../support/operations.js';
import { startS3Server, type TestS3Server } from '../support/s3.js';
import { uploadMultipart } from '../support/uploads.js';

interface StorageCheck {
  status: string;
  message: string;
  details: { kind: string; circuit: { state: string; consecutiveFailures: number; probeAt?: string } };
}

const metric = (text: string, line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);

describe('Kiln on S3 while the S3 service is down', () => {
  let s3: TestS3Server;
  let k: TestKiln;
  let client: Client;
  beforeAll(async () => {
    s3 = await startS3Server();
    process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
    k = await startTestKiln({
      KILN_S3_BUCKET: s3.bucket,
      KILN_S3_ENDPOINT: s3.endpoint,
      KILN_S3_REGION: s3.region,
      KILN_S3_FORCE_PATH_STYLE: 'true',
      KILN_BREAKER_FAILURES: '2',
      KILN_BREAKER_OPEN_S: '1',
      KILN_MAX_RETRIES: '5',
    });
    client = wsClient(k.url);
  });
  afterAll(async () => {
    await client?.dispose();
    await k?.stop();
    await s3?.stop();
  });

  const storageCheck = async () => ((await (await fetch(`${k.url}/health`)).json()) as { checks: { storage: StorageCheck } }).checks.storage;
  const metrics = async () => (await fetch(`${k.url}/metrics`)).text();
  const attemptsOf = async (id: string) => (await ok(k.gql(ATTEMPTS, { id }))).generation;

  it('opens the circuit, keeps jobs queued instead of failing them, refuses at once with UNAVAILABLE, and recovers', async () => {
    // A first job puts the built-in model's files in the worker's cache: later ones need storage only to save.
    const first = (await ok(k.gql(GENERATE, { input: { prompt: 'before the outage', steps: 2 } }))).generate.id;
    await collect(client, PROGRESS, { id: first });
    expect(await storageCheck()).toMatchObject({ status: 'healthy', details: { kind: 's3', circuit: { state: 'closed' } } });

    await s3.pause();
    // Taken while the circuit is still closed: its images cannot be stored, a retryable failure.
    const caught = (await ok(k.gql(GENERATE, { input: { prompt: 'caught by the outage', steps: 2 } }))).generate.id;
    await expect.poll(async () => (await attemptsOf(caught)).attempts.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
    await expect.poll(async () => (await storageCheck()).details.circuit.state, { timeout: 20_000 }).toBe('open');

    const check = await storageCheck();
    expect(check.status).toBe('unhealthy');
    expect(check.message).toMatch(/^circuit (open|half-open) after \d+ failures in a row .*next probe at/);
    expect((await fetch(`${k.url}/health`)).status).toBe(503);
    const during = await metrics();
    expect(metric(during, 'kiln_circuit_state{dependency="storage"}')).toBeGreaterThanOrEqual(1);
    expect(metric(during, 'kiln_circuit_transitions_total{dependency="storage",to="open"}')).toBeGreaterThanOrEqual(1);

    // Queued while the circuit is open: the worker leaves it in the queue.
    const queued = (await ok(k.gql(GENERATE, { input: { prompt: 'queued during the outage', steps: 2 } }))).generate.id;
    await new Promise((r) => setTimeout(r, 2500));
    expect(await attemptsOf(queued)).toMatchObject({ status: 'PENDING', attempts: [] });
    expect((await attemptsOf(caught)).status).toBe('PENDING');

    // A request that needs storage fails at once, UNAVAILABLE, 503 for plain HTTP clients.
    const lora = writeSafetensors({ 'layer1.lora_down.weight': { dtype: 'F32', shape: [1, 4], data: new Float32Array(4) } });
    const builtin = await modelIdNamed(k.gql);
    const started = performance.now();
    const upload = (await uploadMultipart(k.url, lora, 'a.safetensors', { name: 'during the outage', kind: 'LORA', baseModelId: builtin })) as { status?: number; errors?: { message: string; extensions: Record<string, unknown> }[] };
    expect(performance.now() - started).toBeLessThan(1000);
    expect(upload.status).toBe(503);
    expect(upload.errors![0]).toMatchObject({ message: expect.stringMatching(/^storage is unavailable; try again in \d+ s$/), extensions: { code: 'UNAVAILABLE', dependency: 'storage' } });
    expect(metric(await metrics(), 'kiln_circuit_rejected_total{dependency="storage"}')).toBeGreaterThanOrEqual(1);

    await s3.resume();
    // The worker's probe finds storage back; both jobs then run, neither failed for good.
    await collect(client, PROGRESS, { id: queued });
    await collect(client, PROGRESS, { id: caught });
    const queuedAfter = await attemptsOf(queued);
    expect(queuedAfter).toMatchObject({ status: 'COMPLETED', attempts: [{ outcome: 'COMPLETED' }] });
    const caughtAfter = await attemptsOf(caught);
    expect(caughtAfter.status).toBe('COMPLETED');
    const outcomes = caughtAfter.attempts.map((a: { outcome: string; error: { code: string } | null }) => `${a.outcome}${a.error ? ` ${a.error.code}` : ''}`);
    expect(outcomes.at(-1)).toBe('COMPLETED');
    expect(new Set(outcomes.slice(0, -1))).toEqual(new Set(['RETRY STORAGE_ERROR']));
    expect(await storageCheck()).toMatchObject({ status: 'healthy', details: { circuit: { state: 'closed', consecutiveFailures: 0 } } });
    const after = await metrics();
    expect(metric(after, 'kiln_circuit_state{dependency="storage"}')).toBe(0);
    expect(metric(after, 'kiln_circuit_transitions_total{dependency="storage",to="closed"}')).toBeGreaterThanOrEqual(1);
  });
});
