import crypto from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from 'graphql-ws';
import { readPngText } from '../../src/media/png-text.js';
import { collect, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE, GENERATION, PROGRESS, type ProgressEvent } from '../support/operations.js';

const INPUT = { prompt: 'a red fox in the snow', width: 256, height: 256, steps: 8, seed: 42 };
const SUCCESS_STEPS = [
  'QUEUED',
  'LOADING_MODEL',
  'ENCODING_PROMPT',
  ...Array.from({ length: 8 }, (_, i) => `GENERATING ${i + 1}`),
  'SAVING',
  'COMPLETED',
];
const PROGRESS_AT = PROGRESS.replace('attempt', 'attempt at');
const label = (e: ProgressEvent) => (e.step === 'GENERATING' ? `GENERATING ${e.stepIndex}` : e.step);

async function generate(k: TestKiln, input: Record<string, unknown> = INPUT) {
  const { generate } = await ok(k.gql(GENERATE, { input }));
  return generate as { id: string; seed: number };
}

describe('progress of a generation run by a separate worker', () => {
  let api: TestKiln;
  let worker: TestKiln | undefined;
  let client: Client;

  beforeAll(async () => {
    // The API and the worker as two Kiln instances on one database: every event the
    // subscriber sees crossed Postgres, not an in-process shortcut.
    api = await startTestKiln({}, ['--role', 'api']);
    client = wsClient(api.url);
  });
  afterAll(async () => {
    await client?.dispose();
    await worker?.stop();
    await api?.stop();
  });

  it('streams every step in order, live, to a graphql-ws subscriber', async () => {
    const { id } = await generate(api);
    const received: ProgressEvent[] = [];
    const done = collect<{ generationProgress: ProgressEvent }>(client, PROGRESS, { id }, (v) => received.push(v.generationProgress));
    await expect.poll(() => received.length).toBe(1); // QUEUED: nothing runs without a worker
    worker = await startTestKiln({ DATABASE_URL: api.databaseUrl!, KILN_DATA_DIR: api.dataDir }, ['--role', 'worker']);
    await done;

    expect(received.map(label)).toEqual(SUCCESS_STEPS);
    const cursors = received.map((e) => Number(e.cursor));
    expect(cursors).toEqual([...cursors].sort((a, b) => a - b));
    expect(new Set(cursors).size).toBe(cursors.length);
    expect(received.every((e) => e.generationId === id)).toBe(true);
    const generating = received.filter((e) => e.step === 'GENERATING');
    expect(generating.every((e) => e.stepCount === 8 && e.status === 'RUNNING')).toBe(true);
    expect(received.map((e) => e.progress)).toEqual([...received.map((e) => e.progress)].sort((a, b) => a - b));
    // Progress as a client would print it: 0.3, not 0.30000000000000004.
    expect(generating.map((e) => e.progress)).toEqual([0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
    expect(received.at(-1)).toMatchObject({ status: 'COMPLETED', progress: 1 });
    expect(generating.at(-1)!.etaSeconds).toBe(0);
    expect(generating.at(-1)!.preview).toMatch(/^data:image\/png;base64,/);
  });
});

describe('a generation from the mutation to a stored PNG', () => {
  let k: TestKiln;
  let client: Client;

  beforeAll(async () => {
    k = await startTestKiln();
    client = wsClient(k.url);
  });
  afterAll(async () => {
    await client?.dispose();
    await k?.stop();
  });

  async function finished(id: string) {
    await collect<{ generationProgress: ProgressEvent }>(client, PROGRESS, { id });
    return (await ok(k.gql(GENERATION, { id }))).generation;
  }

  it('stores a PNG of the requested size whose bytes match the recorded sha256', async () => {
    const { id, seed } = await generate(k);
    const g = await finished(id);
    expect(g.status).toBe('COMPLETED');
    expect(g.images).toHaveLength(1);
    const image = g.images[0];
    expect(image).toMatchObject({ width: 256, height: 256, seed, mimeType: 'image/png' });

    const res = await fetch(image.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const png = Buffer.from(await res.arrayBuffer());
    expect(png.length).toBe(image.bytes);
    expect(crypto.createHash('sha256').update(png).digest('hex')).toBe(image.sha256);
    const meta = await sharp(png).metadata();
    expect(meta).toMatchObject({ format: 'png', width: 256, height: 256 });
    const text = readPngText(png);
    expect(text.prompt).toBe(INPUT.prompt);
    expect(JSON.parse(text.parameters!)).toMatchObject({ seed: 42, steps: 8, width: 256, height: 256, model: 'kiln-builtin', scheduler: null, guidanceScale: 7.5, numImages: 1, loraId: null });

    for (const key of ['modelLoadMs', 'encodeMs', 'generateMs', 'saveMs', 'totalMs'] as const) {
      expect(g.timing[key]).toBeGreaterThan(0);
    }
    expect(g.timing.totalMs).toBeGreaterThanOrEqual(g.timing.generateMs);
  });

  it('gives byte-identical PNGs for the same prompt, seed and parameters', async () => {
    const a = await finished((await generate(k)).id);
    const b = await finished((await generate(k)).id);
    expect(b.images[0].sha256).toBe(a.images[0].sha256);
  });

  it('makes a different image for another prompt or another seed', async () => {
    const base = await finished((await generate(k)).id);
    const otherPrompt = await finished((await generate(k, { ...INPUT, prompt: 'a blue ocean at night' })).id);
    const otherSeed = await finished((await generate(k, { ...INPUT, seed: 7 })).id);
    const pixels = async (g: { images: { url: string }[] }) =>
      sharp(Buffer.from(await (await fetch(g.images[0]!.url)).arrayBuffer())).raw().toBuffer();
    const [p0, p1, p2] = await Promise.all([pixels(base), pixels(otherPrompt), pixels(otherSeed)]);
    // Visibly different: the mean absolute difference per channel is large, not a few bits.
    const meanDiff = (a: Buffer, b: Buffer) => a.reduce((sum, v, i) => sum + Math.abs(v - b[i]!), 0) / a.length;
    expect(meanDiff(p0, p1)).toBeGreaterThan(10);
    expect(meanDiff(p0, p2)).toBeGreaterThan(10);
  });

  it('replays only the events after a cursor, and ends at once for a finished generation', async () => {
    const { id } = await generate(k);
    const all = (await collect<{ generationProgress: ProgressEvent }>(client, PROGRESS, { id })).map((v) => v.generationProgress);
    expect(all.map(label)).toEqual(SUCCESS_STEPS);

    const fourth = all.find((e) => e.step === 'GENERATING' && e.stepIndex === 4)!;
    const rest = (await collect<{ generationProgress: ProgressEvent }>(client, PROGRESS, { id, after: fourth.cursor })).map((v) => v.generationProgress);
    expect(rest.map(label)).toEqual(SUCCESS_STEPS.slice(SUCCESS_STEPS.indexOf('GENERATING 5')));

    const none = await collect(client, PROGRESS, { id, after: all.at(-1)!.cursor });
    expect(none).toEqual([]);

    const { generation } = await ok(k.gql(`query($id: ID!, $after: String) { generation(id: $id) { events(after: $after) { step } } }`, { id, after: fourth.cursor }));
    expect(generation.events).toHaveLength(rest.length);
  });

  it('attaches previews to GENERATING events at most every KILN_PREVIEW_INTERVAL_MS, and to the last step', async () => {
    const { id } = await generate(k, { ...INPUT, steps: 30 });
    const events = (await collect<{ generationProgress: ProgressEvent & { at?: string } }>(client, PROGRESS_AT, { id })).map((v) => v.generationProgress);
    const generating = events.filter((e) => e.step === 'GENERATING');
    const previewed = generating.filter((e) => e.preview);
    expect(previewed.length).toBeGreaterThanOrEqual(2);
    expect(previewed.length).toBeLessThan(generating.length);
    expect(generating.at(-1)!.preview).toMatch(/^data:image\/png;base64,/);
    // Spaced by the interval (250 ms by default), but for the last step, which always has one.
    const times = previewed.slice(0, -1).map((e) => Date.parse(e.at!));
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(200);
    const png = Buffer.from(generating.at(-1)!.preview!.split(',')[1]!, 'base64');
    expect(await sharp(png).metadata()).toMatchObject({ format: 'png', width: 64, height: 64 });
  });

  it('refuses a subscription to an unknown generation with NOT_FOUND', async () => {
    await expect(collect(client, PROGRESS, { id: crypto.randomUUID() })).rejects.toThrow(/NOT_FOUND/);
    await expect(collect(client, PROGRESS, { id: 'not-an-id' })).rejects.toThrow(/NOT_FOUND/);
  });
});
