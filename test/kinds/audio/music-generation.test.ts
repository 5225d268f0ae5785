import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeWav, parseWav } from '../../../src/media/wav.js';
import type { LoadedAudioPipeline } from '../../../src/pipelines/audio-pipeline.js';
import { writeBuiltinMusicModel } from '../../../src/pipelines/builtin-music/model-files.js';
import { loadBuiltinMusicPipeline } from '../../../src/pipelines/builtin-music/pipeline.js';
import { AUDIO_GENERATION, type AudioEvent, CANCEL_JOB, GENERATE_AUDIO, GENERATE_AUDIO_BATCH, PROGRESS_AT } from '../../support/audio-operations.js';
import { collect, follow, ok, wsClient } from '../../support/graphql.js';
import { startTestKiln, type TestKiln } from '../../support/kiln.js';

const INTERVAL_MS = 20;
const INPUT = { prompt: 'a slow waltz on a music box', durationSeconds: 20, seed: 7 };
const label = (e: AudioEvent) => (e.step === 'GENERATING' ? 'GENERATING' : e.step);
const sha256 = (bytes: Uint8Array) => crypto.createHash('sha256').update(bytes).digest('hex');

describe('music generation with the built-in music model, from the mutation to a stored WAV', () => {
  let k: TestKiln;
  let client: Client;
  let direct: LoadedAudioPipeline;
  let modelDir: string;

  beforeAll(async () => {
    k = await startTestKiln({ KILN_PREVIEW_INTERVAL_MS: String(INTERVAL_MS) });
    client = wsClient(k.url);
    modelDir = await writeBuiltinMusicModel(await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-music-direct-')));
    direct = await loadBuiltinMusicPipeline(modelDir, { executionProviders: ['cpu'] });
  });
  afterAll(async () => {
    await direct?.release();
    await client?.dispose();
    await k?.stop();
    if (modelDir) await fs.rm(modelDir, { recursive: true, force: true });
  });

  const events = async (id: string) => (await collect<{ generationProgress: AudioEvent }>(client, PROGRESS_AT, { id })).map((v) => v.generationProgress);

  it('goes through every step in order, with frames throttled to the interval and the last frame always reported', async () => {
    const { generateAudio } = await ok(k.gql(GENERATE_AUDIO, { input: INPUT }));
    expect(generateAudio).toMatchObject({ status: 'PENDING', durationSeconds: 20, seed: 7, guidanceScale: 3, topK: 15, temperature: 1, model: { name: 'kiln-builtin-music' } });
    const all = await events(generateAudio.id);
    const steps = all.map(label).filter((s, i, list) => s !== list[i - 1]);
    expect(steps).toEqual(['QUEUED', 'LOADING_MODEL', 'ENCODING_PROMPT', 'GENERATING', 'SAVING', 'COMPLETED']);

    const frames = all.filter((e) => e.step === 'GENERATING');
    const count = 20 * 50;
    expect(frames.every((e) => e.stepCount === count && e.status === 'RUNNING')).toBe(true);
    expect(frames.length).toBeGreaterThanOrEqual(2);
    expect(frames.length).toBeLessThan(count);
    const indices = frames.map((e) => e.stepIndex!);
    expect(indices).toEqual([...indices].sort((a, b) => a - b));
    expect(new Set(indices).size).toBe(indices.length);
    expect(indices.at(-1)).toBe(count);
    expect(frames.at(-1)!.etaSeconds).toBe(0);
    // Spaced by the interval (the runner's clock, to the millisecond), but for the last frame.
    const times = frames.slice(0, -1).map((e) => Date.parse(e.at));
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(INTERVAL_MS - 1);
    const progress = all.map((e) => e.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(all.at(-1)).toMatchObject({ status: 'COMPLETED', progress: 1 });
  });

  it('stores a 16-bit WAV whose bytes are the pipeline run directly, with the prompt, seed and model in its INFO chunk', async () => {
    const { generateAudio } = await ok(k.gql(GENERATE_AUDIO, { input: { ...INPUT, durationSeconds: 3, guidanceScale: 4, topK: 5, temperature: 0.8 } }));
    // The first job left the model loaded in the runner: this one reuses it.
    expect((await events(generateAudio.id)).find((e) => e.step === 'ENCODING_PROMPT')!.message).toBe('Model already loaded');
    const { audioGeneration: g } = await ok(k.gql(AUDIO_GENERATION, { id: generateAudio.id }));
    expect(g).toMatchObject({ kind: 'audio', status: 'COMPLETED', currentStep: 'COMPLETED', progress: 1 });
    expect(g.audio).toHaveLength(1);
    const [audio] = g.audio;
    expect(audio).toMatchObject({ index: 0, mimeType: 'audio/wav', durationSeconds: 3, sampleRate: 32000, channels: 1, seed: 7 });
    for (const key of ['modelLoadMs', 'encodeMs', 'generateMs', 'saveMs', 'totalMs'] as const) expect(g.timing[key]).toBeGreaterThan(0);

    const res = await fetch(audio.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/wav');
    const wav = new Uint8Array(await res.arrayBuffer());
    expect(wav.length).toBe(audio.bytes);
    expect(sha256(wav)).toBe(audio.sha256);
    expect(Buffer.from(wav.subarray(0, 4)).toString('latin1')).toBe('RIFF');
    const parsed = parseWav(wav);
    expect(parsed).toMatchObject({ sampleRate: 32000, channels: 1, bitsPerSample: 16 });
    expect(parsed.pcm.length).toBe(3 * 32000);
    expect(parsed.metadata).toEqual({ prompt: INPUT.prompt, seed: 7, model: 'kiln-builtin-music', software: 'Kiln' });

    const request = { prompt: INPUT.prompt, durationSeconds: 3, guidanceScale: 4, seed: 7, topK: 5, temperature: 0.8 };
    const [out] = (await direct.generate(request, { signal: new AbortController().signal, onStep: () => {} })).outputs;
    const expected = encodeWav(out!.samples, { sampleRate: out!.sampleRate, channels: 1, metadata: { prompt: INPUT.prompt, seed: 7, model: 'kiln-builtin-music', software: 'Kiln' } });
    expect(sha256(wav)).toBe(sha256(expected));
  });

  it('estimates a batch from the measured runs of its model', async () => {
    const input = { prompt: 'measure me', durationSeconds: 5, seed: 1 };
    const { generateAudio } = await ok(k.gql(GENERATE_AUDIO, { input }));
    await events(generateAudio.id);
    const runs: { total: number; generate: number; duration: number }[] = await k.kiln.ds.query(
      `SELECT (timing->>'totalMs')::float AS total, (timing->>'generateMs')::float AS generate, (params->>'durationSeconds')::float AS duration FROM jobs WHERE kind = 'audio' AND status = 'COMPLETED'`,
    );
    // Each run's fixed cost, and decoder steps (one per frame, 50 a second) over generation time.
    const overheadMs = runs.reduce((s, r) => s + r.total - r.generate, 0) / runs.length;
    const stepsPerMs = runs.reduce((s, r) => s + r.duration * 50, 0) / runs.reduce((s, r) => s + r.generate, 0);
    const expected = (2 * overheadMs + (5 * 50 + 10 * 50) / stepsPerMs) / 1000;
    const { generateAudioBatch } = await ok(k.gql(GENERATE_AUDIO_BATCH, { inputs: [input, { ...input, durationSeconds: 10 }] }));
    expect(generateAudioBatch.estimatedTotalSeconds).toBeCloseTo(expected, 1);
    await Promise.all(generateAudioBatch.generations.map((g: { id: string }) => events(g.id)));
  });

  it('stops a running generation when cancelled: CANCELLED, before its last frame, with no output and no file', async () => {
    const { generateAudio } = await ok(k.gql(GENERATE_AUDIO, { input: { ...INPUT, durationSeconds: 30, seed: 99 } }));
    const id = generateAudio.id;
    const watch = follow<{ generationProgress: AudioEvent }>(client, PROGRESS_AT, { id });
    await watch.until((v) => v.generationProgress.step === 'GENERATING');
    await ok(k.gql(CANCEL_JOB, { id }));
    const all = (await watch.done).map((v) => v.generationProgress);
    expect(all.at(-1)).toMatchObject({ step: 'CANCELLED', status: 'CANCELLED' });
    const frames = all.filter((e) => e.step === 'GENERATING');
    expect(frames.at(-1)!.stepIndex!).toBeLessThan(30 * 50);
    expect(all.some((e) => e.step === 'SAVING')).toBe(false);
    const { audioGeneration } = await ok(k.gql(AUDIO_GENERATION, { id }));
    expect(audioGeneration).toMatchObject({ status: 'CANCELLED', audio: [] });
    const files = await fs.readdir(path.join(k.dataDir, 'storage', 'jobs', id), { recursive: true }).catch(() => []);
    expect(files.filter((f) => f.endsWith('.wav'))).toEqual([]);
  });
});
