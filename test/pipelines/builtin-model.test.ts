import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBuiltinModel } from '../../src/pipelines/builtin/model-files.js';
import { loadBuiltinPipeline } from '../../src/pipelines/builtin/pipeline.js';
import { builtinTokenIds } from '../../src/pipelines/builtin/prompt-tokens.js';
import type { GenerateRequest, LoadedPipeline, StepReport } from '../../src/pipelines/pipeline.js';

const sha = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');
const REQUEST: GenerateRequest = { prompt: 'a red fox', negativePrompt: null, steps: 4, guidanceScale: 7.5, width: 64, height: 48, seed: 1, numImages: 1 };
const run = (p: LoadedPipeline, req: Partial<GenerateRequest> = {}, onStep: (s: StepReport) => void = () => {}, signal = new AbortController().signal) =>
  p.generate({ ...REQUEST, ...req }, { signal, onStep });

describe('the built-in model', () => {
  let dir: string;
  let pipeline: LoadedPipeline;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-builtin-'));
    for (const f of buildBuiltinModel()) await fs.writeFile(path.join(dir, f.path), f.bytes);
    pipeline = await loadBuiltinPipeline(dir, { executionProviders: ['cpu'] });
  });
  afterAll(async () => {
    await pipeline?.release();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('is generated with the same bytes every time', () => {
    const a = buildBuiltinModel().map((f) => [f.path, sha(f.bytes)]);
    const b = buildBuiltinModel().map((f) => [f.path, sha(f.bytes)]);
    expect(a).toEqual(b);
    expect(a.map(([p]) => p)).toEqual(['model_index.json', 'text_encoder.onnx', 'denoiser.onnx']);
  });

  it('runs the denoiser once per step and reports each step with a preview', async () => {
    const steps: StepReport[] = [];
    const result = await run(pipeline, { steps: 5 }, (s) => steps.push(s));
    expect(steps.map((s) => [s.index, s.count])).toEqual([1, 2, 3, 4, 5].map((i) => [i, 5]));
    const preview = steps.at(-1)!.preview();
    expect(preview.width).toBeLessThanOrEqual(64);
    expect(preview.data.length).toBe(preview.width * preview.height * 3);
    expect(result.images).toHaveLength(1);
    expect(result.images[0]).toMatchObject({ width: 64, height: 48, seed: 1 });
    expect(result.images[0]!.data.length).toBe(64 * 48 * 3);
  });

  it('gives identical pixels for identical requests, and others for another seed, prompt or step count', async () => {
    const base = sha((await run(pipeline)).images[0]!.data);
    expect(sha((await run(pipeline)).images[0]!.data)).toBe(base);
    for (const change of [{ seed: 2 }, { prompt: 'a blue whale' }, { steps: 5 }, { negativePrompt: 'red' }, { guidanceScale: 2 }]) {
      expect(sha((await run(pipeline, change)).images[0]!.data), JSON.stringify(change)).not.toBe(base);
    }
  });

  it('makes numImages images in one batch, image i with seed + i, each as it would be alone', async () => {
    const batch = await run(pipeline, { numImages: 3, seed: 4294967295 });
    expect(batch.images.map((i) => i.seed)).toEqual([4294967295, 0, 1]);
    const alone = await run(pipeline, { seed: 0 });
    expect(sha(batch.images[1]!.data)).toBe(sha(alone.images[0]!.data));
  });

  it('stops between steps once its signal is aborted', async () => {
    const abort = new AbortController();
    const seen: number[] = [];
    const reason = new Error('stop');
    await expect(run(pipeline, { steps: 20 }, (s) => (seen.push(s.index), s.index === 3 && abort.abort(reason)), abort.signal)).rejects.toBe(reason);
    expect(seen).toEqual([1, 2, 3]);
  });

  it('tokenizes words case-insensitively into at most 32 ids, 0 for padding', () => {
    const ids = Array.from(builtinTokenIds('A Red  FOX, a red fox!'));
    expect(ids.slice(0, 3)).toEqual(ids.slice(3, 6));
    expect(ids.slice(6).every((id) => id === 0n)).toBe(true);
    expect(ids.slice(0, 6).every((id) => id > 0n && id < 4096n)).toBe(true);
    expect(Array.from(builtinTokenIds('w '.repeat(100))).every((id) => id > 0n)).toBe(true);
  });
});
