import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AudioGenerateRequest, AudioStepReport, LoadedAudioPipeline } from '../../src/pipelines/audio-pipeline.js';
import { buildBuiltinMusicModel, BUILTIN_MUSIC, writeBuiltinMusicModel } from '../../src/pipelines/builtin-music/model-files.js';
import { measureTokensPerSecond } from '../../src/pipelines/audio-pipelines.js';
import { loadBuiltinMusicPipeline } from '../../src/pipelines/builtin-music/pipeline.js';
import { snrDb } from '../support/musicgen-reference.js';

const request = (prompt: string, seed: number, extra: Partial<AudioGenerateRequest> = {}): AudioGenerateRequest => ({
  prompt,
  durationSeconds: 2,
  guidanceScale: 3,
  seed,
  topK: 250,
  temperature: 1,
  ...extra,
});
const hooks = (onStep: (r: AudioStepReport) => void = () => {}) => ({ signal: new AbortController().signal, onStep });
const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const rms = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);

describe('the built-in music model', () => {
  let dir: string;
  let pipeline: LoadedAudioPipeline;
  beforeAll(async () => {
    dir = await writeBuiltinMusicModel(await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-builtin-music-')));
    pipeline = await loadBuiltinMusicPipeline(dir, { executionProviders: ['cpu'], intraOpThreads: 1 });
  });
  afterAll(async () => {
    await pipeline?.release();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('is the same bytes every time it is built', () => {
    const [a, b] = [buildBuiltinMusicModel(), buildBuiltinMusicModel()];
    expect(a.map((f) => f.path)).toEqual(['model_index.json', 'text_encoder.onnx', 'melody.onnx', 'synth.onnx']);
    a.forEach((f, i) => expect(Buffer.from(f.bytes).equals(Buffer.from(b[i]!.bytes)), f.path).toBe(true));
  });

  it('makes the same audio for the same prompt and seed, other audio for another seed', async () => {
    const [a, b, c] = [await pipeline.generate(request('lofi hip hop beat', 5), hooks()), await pipeline.generate(request('lofi hip hop beat', 5), hooks()), await pipeline.generate(request('lofi hip hop beat', 6), hooks())];
    expect(same(a.outputs[0]!.samples, b.outputs[0]!.samples)).toBe(true);
    expect(a.outputs[0]!.codes).toEqual(b.outputs[0]!.codes);
    expect(same(a.outputs[0]!.samples, c.outputs[0]!.samples)).toBe(false);
    expect(a.outputs[0]!.codes[0]).not.toEqual(c.outputs[0]!.codes[0]);
  });

  it('makes audio that depends on the prompt: other notes and another sound', async () => {
    const a = (await pipeline.generate(request('a calm piano melody with soft strings', 5), hooks())).outputs[0]!;
    const b = (await pipeline.generate(request('90s rock song with loud guitars and heavy drums', 5), hooks())).outputs[0]!;
    expect(a.codes[0]).not.toEqual(b.codes[0]);
    expect(snrDb(a.samples, b.samples)).toBeLessThan(3);
    expect(rms(a.samples)).toBeGreaterThan(0.01);
    expect(rms(b.samples)).toBeGreaterThan(0.01);
  });

  it('with guidance 0 ignores the prompt, and with temperature 0 plays the same melody for every seed', async () => {
    const a = (await pipeline.generate(request('techno', 1, { guidanceScale: 0 }), hooks())).outputs[0]!;
    const b = (await pipeline.generate(request('folk ballad', 1, { guidanceScale: 0 }), hooks())).outputs[0]!;
    expect(same(a.samples, b.samples)).toBe(true);
    const greedy = await Promise.all([1, 2].map(async (seed) => (await pipeline.generate(request('folk ballad', seed, { temperature: 0 }), hooks())).outputs[0]!));
    expect(greedy[0]!.codes).toEqual(greedy[1]!.codes);
  });

  it('makes 32 kHz mono of the asked length, within [-1, 1], reporting every frame', async () => {
    const reports: AudioStepReport[] = [];
    const result = await pipeline.generate(request('ambient', 9, { durationSeconds: 1.5 }), hooks((r) => reports.push(r)));
    const frames = 1.5 * BUILTIN_MUSIC.frameRate;
    const [output] = result.outputs;
    expect([output!.sampleRate, output!.channels, output!.samples.length, result.decoderSteps]).toEqual([32000, 1, frames * BUILTIN_MUSIC.hop, frames]);
    expect(output!.codes.map((row) => row.length)).toEqual([frames, frames]);
    expect(reports).toEqual(Array.from({ length: frames }, (_, i) => ({ index: i + 1, count: frames })));
    expect(Math.max(...output!.samples.map(Math.abs))).toBeLessThanOrEqual(0.8);
    const batch = await pipeline.generate(request('ambient', 9, { durationSeconds: 1.5, numOutputs: 2 }), hooks());
    // Batched matrix products may round differently from single ones: the same notes, to float error.
    expect(batch.outputs[0]!.codes).toEqual(output!.codes);
    expect(snrDb(output!.samples, batch.outputs[0]!.samples)).toBeGreaterThan(100);
    expect(batch.outputs[1]!.seed).toBe(10);
  });

  it('measures its steps per second from a short generation, for estimates before any history', async () => {
    const perSecond = await measureTokensPerSecond(pipeline, 25);
    expect(perSecond).toBeGreaterThan(1);
    expect(Number.isFinite(perSecond)).toBe(true);
  });

  it('stops at the next frame once cancelled', async () => {
    const controller = new AbortController();
    let frames = 0;
    const run = pipeline.generate(request('cancel me', 1, { durationSeconds: 10 }), {
      signal: controller.signal,
      onStep: () => {
        if (++frames === 20) controller.abort(new Error('cancelled'));
      },
    });
    await expect(run).rejects.toThrow('cancelled');
    expect(frames).toBe(20);
  });
});
