import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GenerateRequest, StepReport } from '../../../src/pipelines/pipeline.js';
import { loadPipeline } from '../../../src/pipelines/catalog.js';
import { loadStableDiffusionPipeline, type StableDiffusionPipeline } from '../../../src/pipelines/stable-diffusion/pipeline.js';
import { SCHEDULER_NAMES } from '../../../src/pipelines/stable-diffusion/schedulers/scheduler-config.js';
import { type SdFixtureOptions, writeSdFixture } from '../../support/sd-fixtures.js';

const REQUEST: GenerateRequest = { prompt: 'a red fox', negativePrompt: 'blurry', steps: 4, guidanceScale: 7.5, width: 64, height: 48, seed: 7, numImages: 1 };
const sha = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

let root: string;
const pipelines: StableDiffusionPipeline[] = [];
async function load(name: string, options: SdFixtureOptions): Promise<StableDiffusionPipeline> {
  const p = await loadStableDiffusionPipeline(await writeSdFixture(path.join(root, name), options), { executionProviders: ['cpu'] });
  pipelines.push(p);
  return p;
}
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-sd-pipeline-'));
});
afterAll(async () => {
  await Promise.all(pipelines.map((p) => p.release()));
  await fs.rm(root, { recursive: true, force: true });
});

function run(p: StableDiffusionPipeline, change: Partial<GenerateRequest> = {}, onStep: (s: StepReport) => void = () => {}, signal = new AbortController().signal) {
  return p.generate({ ...REQUEST, ...change }, { signal, onStep });
}

describe('the Stable Diffusion pipeline on an Optimum-layout fixture', () => {
  let p: StableDiffusionPipeline;
  beforeAll(async () => {
    p = await load('optimum', { layout: 'optimum' });
  });

  it.each(SCHEDULER_NAMES)('%s: makes images of the requested size, reports every UNet run with a preview, and repeats itself exactly', async (scheduler) => {
    const steps: StepReport[] = [];
    const result = await run(p, { scheduler }, (s) => steps.push(s));
    const runs = scheduler === 'pndm' ? 5 : 4;
    expect(steps.map((s) => [s.index, s.count])).toEqual(Array.from({ length: runs }, (_, i) => [i + 1, runs]));
    const preview = steps[1]!.preview();
    // 8×6 latents, previewed at 64 pixels on the longer side.
    expect([preview.width, preview.height]).toEqual([64, 48]);
    expect(preview.data).toHaveLength(64 * 48 * 3);
    expect(result.images).toHaveLength(1);
    expect(result.images[0]).toMatchObject({ width: 64, height: 48, seed: 7 });
    expect(result.images[0]!.data).toHaveLength(64 * 48 * 3);
    expect(new Set(result.images[0]!.data).size).toBeGreaterThan(50);
    expect(sha((await run(p, { scheduler })).images[0]!.data)).toBe(sha(result.images[0]!.data));
    expect(sha((await run(p, { scheduler, seed: 8 })).images[0]!.data)).not.toBe(sha(result.images[0]!.data));
  });

  it('gives each scheduler its own result, and the model default (PNDM) when the request names none', async () => {
    const hashes = await Promise.all(SCHEDULER_NAMES.map(async (scheduler) => sha((await run(p, { scheduler })).images[0]!.data)));
    expect(new Set(hashes).size).toBe(SCHEDULER_NAMES.length);
    expect(sha((await run(p, { scheduler: null })).images[0]!.data)).toBe(hashes[SCHEDULER_NAMES.indexOf('pndm')]);
  });

  it('guides with the negative prompt above guidance 1 and runs the prompt alone at or below it', async () => {
    const guided = sha((await run(p)).images[0]!.data);
    expect(sha((await run(p, { negativePrompt: 'a blue whale' })).images[0]!.data)).not.toBe(guided);
    expect(sha((await run(p, { guidanceScale: 3 })).images[0]!.data)).not.toBe(guided);
    const alone = sha((await run(p, { guidanceScale: 1 })).images[0]!.data);
    expect(alone).not.toBe(guided);
    expect(sha((await run(p, { guidanceScale: 0, negativePrompt: 'a blue whale' })).images[0]!.data)).toBe(alone);
  });

  it('runs the UNet once per step, on both guidance halves of every image together', async () => {
    // Every session is an instance of onnxruntime's InferenceSession class, whatever its factory type says.
    const sessions = (ort.InferenceSession as unknown as { prototype: ort.InferenceSession }).prototype;
    const spy = vi.spyOn(sessions, 'run');
    try {
      const unetBatches = () =>
        spy.mock.calls.map(([feeds]) => feeds as Record<string, ort.Tensor>).filter((feeds) => 'timestep' in feeds).map((feeds) => feeds.sample!.dims[0]);
      await run(p, { scheduler: 'euler', numImages: 3 });
      expect(unetBatches()).toEqual([6, 6, 6, 6]);
      spy.mockClear();
      await run(p, { scheduler: 'euler', numImages: 3, guidanceScale: 1 });
      expect(unetBatches()).toEqual([3, 3, 3, 3]);
    } finally {
      spy.mockRestore();
    }
  });

  it.each(['euler_ancestral', 'lcm', 'ddim'])('%s: makes numImages images in one batch, image i with seed + i, each as it would be alone', async (scheduler) => {
    const batch = await run(p, { scheduler, numImages: 2, seed: 4294967295 });
    expect(batch.images.map((i) => i.seed)).toEqual([4294967295, 0]);
    const alone = await run(p, { scheduler, seed: 0 });
    expect(sha(batch.images[1]!.data)).toBe(sha(alone.images[0]!.data));
    expect(sha(batch.images[0]!.data)).not.toBe(sha(batch.images[1]!.data));
  });

  it('starts from given latents instead of seeded noise', async () => {
    const latents = Float32Array.from({ length: 4 * 6 * 8 }, (_, i) => Math.sin(i));
    const a = await run(p, { scheduler: 'euler', latents, seed: 1 });
    const b = await run(p, { scheduler: 'euler', latents, seed: 2 });
    expect(sha(a.images[0]!.data)).toBe(sha(b.images[0]!.data));
    expect(sha(a.images[0]!.data)).not.toBe(sha((await run(p, { scheduler: 'euler', seed: 1 })).images[0]!.data));
    await expect(run(p, { latents: new Float32Array(10) })).rejects.toThrow(/latents must hold 192 values/);
  });

  it('returns the decoded images as floats in [0, 1] that round to the 8-bit ones', async () => {
    const result = await p.generateWithPixels({ ...REQUEST, numImages: 2 }, { signal: new AbortController().signal, onStep() {} });
    expect(result.pixels).toHaveLength(2);
    result.pixels.forEach((pixels, i) => {
      expect(pixels).toHaveLength(64 * 48 * 3);
      expect(pixels.every((v) => v >= 0 && v <= 1)).toBe(true);
      expect(Array.from(pixels.subarray(0, 300), (v) => Math.round(v * 255))).toEqual(Array.from(result.images[i]!.data.subarray(0, 300)));
    });
  });

  it('stops between UNet runs once its signal is aborted', async () => {
    const abort = new AbortController();
    const reason = new Error('stop');
    const seen: number[] = [];
    await expect(run(p, { steps: 20, scheduler: 'euler' }, (s) => (seen.push(s.index), s.index === 2 && abort.abort(reason)), abort.signal)).rejects.toBe(reason);
    expect(seen).toEqual([1, 2]);
  });

  it('refuses unknown schedulers, sizes not a multiple of 8 and step counts a scheduler cannot take', async () => {
    await expect(run(p, { scheduler: 'dpm++' })).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringMatching(/unknown scheduler "dpm\+\+"/) });
    await expect(run(p, { width: 60 })).rejects.toThrow('width must be a positive multiple of 8');
    await expect(run(p, { scheduler: 'lcm', steps: 60 })).rejects.toThrow(/at most 50 steps/);
  });

  it('is what the registry loads as stable-diffusion-onnx', async () => {
    const loaded = await loadPipeline('stable-diffusion-onnx', path.join(root, 'optimum'), { executionProviders: ['cpu'] });
    try {
      expect(sha((await loaded.generate(REQUEST, { signal: new AbortController().signal, onStep() {} })).images[0]!.data)).toBe(sha((await run(p)).images[0]!.data));
    } finally {
      await loaded.release();
    }
  });
});

describe('the Stable Diffusion pipeline on an LCM-distilled UNet', () => {
  it('feeds guidance as the timestep_cond embedding, one batch half, no negative prompt', async () => {
    const p = await load('lcm', { layout: 'optimum', guidanceEmbedding: 16 });
    const sessions = (ort.InferenceSession as unknown as { prototype: ort.InferenceSession }).prototype;
    const spy = vi.spyOn(sessions, 'run');
    try {
      const image = async (change: Partial<GenerateRequest>) => sha((await run(p, { scheduler: 'lcm', guidanceScale: 8, ...change })).images[0]!.data);
      const base = await image({});
      const unetFeeds = spy.mock.calls.map(([feeds]) => feeds as Record<string, ort.Tensor>).filter((feeds) => 'timestep' in feeds);
      expect(unetFeeds.map((f) => [f.sample!.dims[0], f.timestep_cond!.dims])).toEqual(new Array(4).fill([1, [1, 16]]));
      expect(await image({ negativePrompt: 'a blue whale' })).toBe(base);
      expect(await image({ guidanceScale: 2 })).not.toBe(base);
    } finally {
      spy.mockRestore();
    }
  });
});

describe("the Stable Diffusion pipeline on ONNX Runtime's fp16 SD-Turbo layout", () => {
  let turbo: StableDiffusionPipeline;
  let fixed: StableDiffusionPipeline;
  beforeAll(async () => {
    turbo = await load('turbo', { layout: 'ort-turbo' });
    fixed = await load('turbo-static', { layout: 'ort-turbo', fixedBatch: 1, fixedLatent: 8, timestepType: 'float16' });
  });

  it('runs float16 graphs with int32 ids, for one step without guidance by default', async () => {
    const steps: StepReport[] = [];
    const d = turbo.folder.defaults;
    const result = await turbo.generate({ ...REQUEST, steps: d.steps, guidanceScale: d.guidanceScale, width: 64, height: 64, numImages: 2 }, { signal: new AbortController().signal, onStep: (s) => steps.push(s) });
    expect(steps.map((s) => s.count)).toEqual([1]);
    expect(result.images.map((i) => [i.width, i.height, i.data.length])).toEqual([[64, 64, 64 * 64 * 3], [64, 64, 64 * 64 * 3]]);
    expect(new Set(result.images[0]!.data).size).toBeGreaterThan(50);
  });

  it.each(SCHEDULER_NAMES)('%s: gives a static-shape build (batch 1, 64×64, float16 timestep) the same images, one batch item per run', async (scheduler) => {
    const request = { ...REQUEST, scheduler, width: 64, height: 64, numImages: 2 };
    const a = await run(turbo, request);
    const b = await run(fixed, request);
    expect(b.images.map((i) => sha(i.data))).toEqual(a.images.map((i) => sha(i.data)));
  });

  it('refuses sizes and batches a static-shape build does not take', async () => {
    await expect(run(fixed, { width: 64, height: 48 })).rejects.toThrow("this model's UNet only makes 64×64 images");
    const pairs = await load('turbo-batch-2', { layout: 'ort-turbo', fixedBatch: 2 });
    await expect(run(pairs, { width: 64, height: 64, guidanceScale: 1 })).rejects.toThrow("this model's text encoder runs batches of 2, and this request gives it 1");
    await expect(run(pairs, { width: 64, height: 64 })).rejects.toThrow("this model's VAE decoder runs batches of 2, and this request gives it 1");
    expect((await run(pairs, { width: 64, height: 64, numImages: 2 })).images).toHaveLength(2);
  });
});
