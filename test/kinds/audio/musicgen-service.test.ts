import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadModelFolder } from '../../../src/cli/model-upload.js';
import { encodeWav, parseWav } from '../../../src/media/wav.js';
import type { AudioGenerateRequest } from '../../../src/pipelines/audio-pipeline.js';
import { loadMusicgenPipeline } from '../../../src/pipelines/musicgen/pipeline.js';
import { AUDIO_GENERATION, GENERATE_AUDIO, PROGRESS_AT } from '../../support/audio-operations.js';
import { collect, ok, wsClient } from '../../support/graphql.js';
import { startTestKiln, type TestKiln } from '../../support/kiln.js';
import { FIXTURE, type MusicgenFixtureOptions, writeMusicgenFixture } from '../../support/musicgen-fixtures.js';
import { MUSICGEN_MODEL } from '../../support/musicgen-reference.js';

const hasMusicgenTiny = fs.existsSync(path.join(MUSICGEN_MODEL, 'config.json'));
const sha256 = (bytes: Uint8Array) => crypto.createHash('sha256').update(bytes).digest('hex');

const MODEL = /* GraphQL */ `
  query($id: ID!) {
    model(id: $id) { name pipeline modality isDefault capabilities { ... on AudioCapabilities {
      durationSeconds { min max default } guidanceScale { default } topK { min max default } temperature { default } sampleRate channels } } }
  }
`;

describe('MusicGen models in the service: imported from a folder, then generated with', () => {
  let k: TestKiln;
  let client: Client;
  let tmp: string;
  beforeAll(async () => {
    k = await startTestKiln();
    client = wsClient(k.url);
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'kiln-musicgen-service-'));
  });
  afterAll(async () => {
    await client?.dispose();
    await k?.stop();
    if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
  });

  /** Generates through the API, and returns the job, its WAV and what the same request gives from the pipeline run directly. */
  async function generateBoth(modelId: string, dir: string, name: string, request: Omit<AudioGenerateRequest, 'prompt'> & { prompt: string }) {
    const { generateAudio } = await ok(k.gql(GENERATE_AUDIO, { input: { modelId, ...request } }));
    const events = (await collect(client, PROGRESS_AT, { id: generateAudio.id })).map((v) => v.generationProgress);
    const { audioGeneration } = await ok(k.gql(AUDIO_GENERATION, { id: generateAudio.id }));
    const wav = new Uint8Array(await (await fetch(audioGeneration.audio[0].url)).arrayBuffer());
    const pipeline = await loadMusicgenPipeline(dir, { executionProviders: ['cpu'] });
    try {
      const [out] = (await pipeline.generate(request, { signal: new AbortController().signal, onStep: () => {} })).outputs;
      const expected = encodeWav(out!.samples, { sampleRate: out!.sampleRate, channels: out!.channels, metadata: { prompt: request.prompt, seed: request.seed, model: name, software: 'Kiln' } });
      return { events, generation: audioGeneration, wav, expected };
    } finally {
      await pipeline.release();
    }
  }

  const layouts: [string, MusicgenFixtureOptions][] = [
    ["Optimum's layout, mono, merged decoder", { layout: 'optimum' }],
    ["transformers.js' layout, stereo, split decoder", { layout: 'transformers-js', channels: 2, decoder: 'split' }],
    ["Optimum's layout with quantized graphs only (the variant rule picks them)", { layout: 'optimum', omitFp32: true, extraVariants: ['quantized'] }],
  ];

  it.each(layouts)('imports a folder in %s through the direct upload, and generates with it what the pipeline makes', async (title, options) => {
    const dir = await writeMusicgenFixture(path.join(tmp, title.replace(/\W+/g, '-')), options);
    const name = `tiny ${title}`;
    const model = await uploadModelFolder(k.url, dir, { name, kind: 'BASE' });
    expect(model.pipeline).toBe('musicgen-onnx');
    const channels = options.channels ?? 1;
    const { model: declared } = await ok(k.gql(MODEL, { id: model.id }));
    expect(declared).toEqual({
      name,
      pipeline: 'musicgen-onnx',
      modality: 'audio',
      isDefault: false,
      capabilities: {
        // 256 decoder positions: 255 steps, 3 of them the delay pattern's, at 50 frames a second.
        durationSeconds: { min: 1, max: 5.04, default: 5.04 },
        guidanceScale: { default: 3 },
        topK: { min: 0, max: FIXTURE.vocab, default: FIXTURE.vocab },
        temperature: { default: 1 },
        sampleRate: FIXTURE.sampleRate,
        channels,
      },
    });
    const tooLong = await k.gql(GENERATE_AUDIO, { input: { prompt: 'a b', modelId: model.id, durationSeconds: 6 } });
    expect(tooLong.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.durationSeconds' });

    const { generation, wav, expected } = await generateBoth(model.id, dir, name, { prompt: 'a b c', durationSeconds: 1.5, guidanceScale: 3, seed: 4, topK: 0, temperature: 0 });
    expect(generation.audio[0]).toMatchObject({ mimeType: 'audio/wav', sampleRate: FIXTURE.sampleRate, channels, durationSeconds: 1.5, seed: 4 });
    expect(parseWav(wav)).toMatchObject({ sampleRate: FIXTURE.sampleRate, channels });
    expect(sha256(wav)).toBe(sha256(expected));
  });

  it('refuses a MusicGen folder missing a graph, naming what is missing, and keeps nothing', async () => {
    const dir = await writeMusicgenFixture(path.join(tmp, 'broken'), { layout: 'transformers-js' });
    await fsp.rm(path.join(dir, 'onnx', 'encodec_decode.onnx'));
    await expect(uploadModelFolder(k.url, dir, { name: 'broken', kind: 'BASE' })).rejects.toThrow(
      /BAD_USER_INPUT: .*not a usable MusicGen ONNX folder: missing onnx\/encodec_decode\.onnx/,
    );
    expect((await k.kiln.ds.query(`SELECT count(*)::int AS n FROM models WHERE name = 'broken'`))[0].n).toBe(0);
  });

  it.skipIf(!hasMusicgenTiny)(
    `generates from the musicgen-tiny fixture what the pipeline run directly makes, greedy and sampled${hasMusicgenTiny ? '' : ` (skipped: ${MUSICGEN_MODEL} is absent)`}`,
    async () => {
      const model = await uploadModelFolder(k.url, MUSICGEN_MODEL, { name: 'musicgen-tiny', kind: 'BASE' });
      const { model: declared } = await ok(k.gql(MODEL, { id: model.id }));
      expect(declared.capabilities).toEqual({
        durationSeconds: { min: 1, max: 30, default: 8 },
        guidanceScale: { default: 3 },
        topK: { min: 0, max: 128, default: 128 },
        temperature: { default: 1 },
        sampleRate: 32000,
        channels: 1,
      });
      const greedy = await generateBoth(model.id, MUSICGEN_MODEL, 'musicgen-tiny', { prompt: 'an upbeat synth melody', durationSeconds: 2, guidanceScale: 3, seed: 0, topK: 0, temperature: 0 });
      expect(greedy.generation).toMatchObject({ status: 'COMPLETED', temperature: 0, audio: [{ sampleRate: 32000, channels: 1, durationSeconds: 2 }] });
      expect(sha256(greedy.wav)).toBe(sha256(greedy.expected));
      const frames = greedy.events.filter((e) => e.step === 'GENERATING');
      expect(frames.at(-1)).toMatchObject({ stepIndex: 100, stepCount: 100, etaSeconds: 0 });

      const sampled = await generateBoth(model.id, MUSICGEN_MODEL, 'musicgen-tiny', { prompt: 'an upbeat synth melody', durationSeconds: 2, guidanceScale: 3, seed: 11, topK: 50, temperature: 1 });
      expect(sha256(sampled.wav)).toBe(sha256(sampled.expected));
      expect(sha256(sampled.wav)).not.toBe(sha256(greedy.wav));
    },
  );
});
