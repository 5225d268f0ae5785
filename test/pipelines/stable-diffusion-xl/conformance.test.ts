import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createScheduler } from '../../../src/pipelines/stable-diffusion/schedulers/scheduler.js';
import { resolveSchedulerConfig } from '../../../src/pipelines/stable-diffusion/schedulers/scheduler-config.js';
import { loadStableDiffusionXLPipeline, type StableDiffusionXLPipeline } from '../../../src/pipelines/stable-diffusion-xl/pipeline.js';
import { timeIds } from '../../../src/pipelines/stable-diffusion-xl/time-ids.js';
import {
  hasSdxlReference,
  psnr,
  readSdxlReference,
  referenceFloats,
  referenceRequest,
  SDXL_TINY,
  type SdxlReferenceCase,
} from '../../support/sdxl-fixtures.js';

/**
 * Kiln against what diffusers' StableDiffusionXLPipeline computes with the same model
 * (../shared/fixtures: sdxl-tiny, a real SDXL-architecture UNet and VAE with random weights, and
 * sdxl-tiny-reference, diffusers' own runs with every step's inputs and outputs).
 */
const maxDifference = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
};
const cases = (): [string, SdxlReferenceCase][] => (hasSdxlReference ? readSdxlReference().cases.map((c) => [c.name, c]) : []);

describe.skipIf(!hasSdxlReference)("conformance with diffusers' StableDiffusionXLPipeline on sdxl-tiny", () => {
  let pipeline: StableDiffusionXLPipeline;
  beforeAll(async () => {
    pipeline = await loadStableDiffusionXLPipeline(SDXL_TINY, { executionProviders: ['cpu'] });
  });
  afterAll(() => pipeline?.release());

  it("has the timesteps, sigmas and initial sigma of every step count under the model's scheduler config (leading spacing, steps offset 1), to 1e-6", () => {
    expect(pipeline.folder.defaults.scheduler).toBe('euler');
    for (const entry of readSdxlReference().schedules.entries) {
      const s = createScheduler(resolveSchedulerConfig(pipeline.folder.schedulerConfig, 'euler'), entry.num_inference_steps);
      const what = `${entry.num_inference_steps} steps`;
      expect(maxDifference(s.timesteps, entry.timesteps), what).toBe(0);
      expect(maxDifference(s.sigmas!, entry.sigmas), what).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(s.initNoiseSigma - entry.init_noise_sigma), what).toBeLessThanOrEqual(1e-6);
    }
  });

  it.each(cases())('%s: feeds the UNet what diffusers does (time ids, timesteps, conditioning, every step sample) and reproduces its image at 40 dB or more', async (_, c) => {
    expect(timeIds(referenceRequest(c))).toEqual(c.add_time_ids[0]);
    const prototype = (ort.InferenceSession as unknown as { prototype: ort.InferenceSession }).prototype;
    const spy = vi.spyOn(prototype, 'run');
    let result;
    let calls;
    try {
      result = await pipeline.generateWithPixels(referenceRequest(c), { signal: new AbortController().signal, onStep() {} });
      calls = spy.mock.calls.slice();
    } finally {
      spy.mockRestore();
    }
    const unetFeeds = calls.map(([feeds]) => feeds as Record<string, ort.Tensor>).filter((feeds) => 'time_ids' in feeds);
    expect(unetFeeds).toHaveLength(c.num_inference_steps);
    const data = (t: ort.Tensor) => t.data as Float32Array;

    const first = unetFeeds[0]!;
    expect(first.time_ids!.dims).toEqual([2, 6]);
    expect(Array.from(data(first.time_ids!))).toEqual(c.add_time_ids.flat());
    expect(maxDifference(data(first.time_ids!), referenceFloats(c, c.files.unet_time_ids!.file))).toBe(0);
    expect(maxDifference(data(first.encoder_hidden_states!), referenceFloats(c, c.files.unet_encoder_hidden_states!.file))).toBe(0);
    expect(maxDifference(data(first.text_embeds!), referenceFloats(c, c.files.unet_text_embeds!.file))).toBe(0);
    expect(maxDifference(data(first.sample!), referenceFloats(c, c.steps[0]!.unet_sample_in.file))).toBeLessThanOrEqual(1e-6);
    unetFeeds.forEach((feeds, i) => {
      const step = c.steps[i]!;
      expect(feeds.timestep!.dims).toEqual([]);
      expect(data(feeds.timestep!)[0], `step ${i}`).toBe(step.unet_timestep_input);
      expect(maxDifference(data(feeds.sample!), referenceFloats(c, step.unet_sample_in.file)), `step ${i}`).toBeLessThanOrEqual(1e-4);
    });

    expect(psnr(result.pixels[0]!, referenceFloats(c, c.files.image!.file))).toBeGreaterThanOrEqual(40);
  });
});
