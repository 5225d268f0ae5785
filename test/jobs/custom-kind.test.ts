import sharp from 'sharp';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobPolicy } from '../../src/jobs/queue.js';
import { submitJobs } from '../../src/jobs/submit.js';
import { KINDS } from '../../src/kinds/registry.js';
import { echoKind } from '../support/echo-kind/kind.js';
import { collect, follow, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { PROGRESS, progressOf, type ProgressEvent, stepLabel } from '../support/operations.js';

const JOB = /* GraphQL */ `
  query Job($id: ID!) {
    job(id: $id) {
      __typename id kind status currentStep progress retryCount params
      attempts { attempt outcome error { code retryable } }
      outputs { __typename index url mimeType bytes sha256 ... on Image { width height } }
      error { code }
    }
  }
`;

/**
 * The lifecycle knows no kind: a kind written here, in the test suite, runs through the queue,
 * attempts, retries, cancel, events and outputs with nothing of it added to Kiln.
 */
describe('a kind of work defined outside Kiln', () => {
  let k: TestKiln;
  let client: Client;
  const submit = async (input: Record<string, unknown>, options: { priority?: number } = {}) => {
    const policy = jobPolicy({ maxRetries: 2, retryDelayMs: 0, jobTimeoutSeconds: 60, heartbeatSeconds: 10 });
    const { jobs } = await submitJobs(
      { ds: k.kiln.ds, boss: k.kiln.boss, jobPolicy: () => policy },
      { kind: echoKind, inputs: [{ input, options, field: 'input' }] },
    );
    return jobs[0]!.id;
  };

  beforeAll(async () => {
    k = await startTestKiln({}, [], { kinds: [...KINDS, echoKind] });
    client = wsClient(k.url);
  });
  afterAll(async () => {
    await client?.dispose();
    await k?.stop();
  });

  it('runs through its steps in a worker and its runner, streams them, and stores its output', async () => {
    const id = await submit({ text: 'kiln', units: 4 });
    const events = (await collect<{ generationProgress: ProgressEvent }>(client, PROGRESS, { id })).map(progressOf);
    expect(events.map(stepLabel)).toEqual(['QUEUED', 'LOADING_MODEL', 'GENERATING 1', 'GENERATING 2', 'GENERATING 3', 'GENERATING 4', 'SAVING', 'COMPLETED']);
    expect(events.map((e) => e.progress)).toEqual([0, 0.05, 0.3, 0.5, 0.7, 0.9, 0.95, 1]);

    const { job } = await ok(k.gql(JOB, { id }));
    expect(job).toMatchObject({ __typename: 'GenericJob', kind: 'echo', status: 'COMPLETED', params: { text: 'kiln', units: 4, stepMs: 0, failAttempts: 0 } });
    expect(job.outputs).toEqual([expect.objectContaining({ __typename: 'Image', index: 0, mimeType: 'image/png', width: 4, height: 1 })]);
    const png = Buffer.from(await (await fetch(job.outputs[0].url)).arrayBuffer());
    const pixels = await sharp(png).raw().toBuffer();
    expect(String.fromCharCode(...[0, 3, 6, 9].map((i) => pixels[i]!))).toBe('KILN');
  });

  it('retries a retryable failure as another attempt, starting again at its first step', async () => {
    const id = await submit({ text: 'again', failAttempts: 1 });
    const events = (await collect<{ generationProgress: ProgressEvent }>(client, PROGRESS, { id })).map(progressOf);
    expect(events.map((e) => `${e.attempt}:${stepLabel(e)}`)).toEqual([
      '0:QUEUED',
      '1:LOADING_MODEL',
      '1:QUEUED',
      '2:LOADING_MODEL',
      '2:GENERATING 1',
      '2:GENERATING 2',
      '2:GENERATING 3',
      '2:SAVING',
      '2:COMPLETED',
    ]);
    const { job } = await ok(k.gql(JOB, { id }));
    expect(job).toMatchObject({ status: 'COMPLETED', retryCount: 1 });
    expect(job.attempts).toMatchObject([{ outcome: 'RETRY', error: { code: 'FLAKY', retryable: true } }, { outcome: 'COMPLETED' }]);
  });

  it('lets its worker start the next job while it stores its output, once it has let the runner go', async () => {
    const saving = await submit({ text: 'slow to store', saveMs: 1500 });
    const next = await submit({ text: 'next' });
    await expect.poll(async () => (await ok(k.gql(JOB, { id: next }))).job.status, { timeout: 20_000 }).toBe('COMPLETED');
    const [a, b] = await Promise.all([saving, next].map(async (id) => (await ok(k.gql(JOB, { id }))).job));
    expect([a.status, a.outputs.length]).toEqual(['COMPLETED', 1]);
    const [row] = await k.kiln.ds.query('SELECT (SELECT started_at FROM jobs WHERE id = $2) < completed_at AS overlapped FROM jobs WHERE id = $1', [saving, next]);
    expect(row.overlapped).toBe(true);
    expect(b.outputs[0].width).toBe(4);
  });

  it('is cancelled while it runs, and keeps no output', async () => {
    const id = await submit({ text: 'long', units: 100, stepMs: 50 });
    const watching = follow<{ generationProgress: ProgressEvent }>(client, PROGRESS, { id });
    await watching.until((v) => progressOf(v).step === 'GENERATING');
    const { cancelJob } = await ok(k.gql(`mutation($id: ID!) { cancelJob(id: $id) { id status cancelRequested } }`, { id }));
    expect(cancelJob).toMatchObject({ status: 'RUNNING', cancelRequested: true });
    const events = (await watching.done).map(progressOf);
    expect(events.at(-1)).toMatchObject({ step: 'CANCELLED', status: 'CANCELLED' });
    expect(events.filter((e) => e.step === 'GENERATING').length).toBeLessThan(100);
    const { job } = await ok(k.gql(JOB, { id }));
    expect(job).toMatchObject({ status: 'CANCELLED', outputs: [] });
  });

  it('is counted by kind in the queue stats, and listed among jobs of its kind', async () => {
    const { queueStats, jobs } = await ok(k.gql(`{ queueStats(kind: "echo") { completed cancelled } jobs(kind: "echo") { edges { node { kind } } } }`));
    expect(queueStats).toEqual({ completed: 4, cancelled: 1 });
    expect(jobs.edges.map((e: { node: { kind: string } }) => e.node.kind)).toEqual(['echo', 'echo', 'echo', 'echo', 'echo']);
  });
});
