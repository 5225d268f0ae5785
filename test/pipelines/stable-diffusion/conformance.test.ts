import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadStableDiffusionPipeline, type StableDiffusionPipeline } from '../../../src/pipelines/stable-diffusion/pipeline.js';
import { createScheduler } from '../../../src/pipelines/stable-diffusion/schedulers/scheduler.js';
import { resolveSchedulerConfig, SCHEDULER_NAMES } from '../../../src/pipelines/stable-diffusion/schedulers/scheduler-config.js';
import { SHARED_FIXTURES } from '../../support/sd-fixtures.js';

/**
 * Kiln against what diffusers computes with the same model (../shared/fixtures: sd-tiny, a real
 * SD-architecture model with random weights, and sd-tiny-reference, diffusers' own numbers).
 * Token ids are compared in clip-tokenizer.test.ts.
 */
const MODEL = path.join(SHARED_FIXTURES, 'sd-tiny');
const REFERENCE = path.join(SHARED_FIXTURES, 'sd-tiny-reference');

interface ScheduleReference {
  timesteps: number[];
  sigmas?: number[];
  init_noise_sigma: number;
}
interface CaseReference {
  scheduler: string;
  prompt: string;
  negative: string | null;
  guidance: number;
  steps: number;
  size: number;
  seed: number;
  latents: string;
  image_f32: string;
}

const readReference = () => JSON.parse(fs.readFileSync(path.join(REFERENCE, 'reference.json'), 'utf8')) as {
  schedulers: Record<string, Record<string, ScheduleReference>>;
  pipelines: CaseReference[];
};
const float32File = (name: string) => {
  const bytes = fs.readFileSync(path.join(REFERENCE, name));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};
const maxDifference = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!)));

describe.skipIf(!fs.existsSync(path.join(REFERENCE, 'reference.json')))("conformance with diffusers' reference for sd-tiny", () => {
  const schedulerFile = () => JSON.parse(fs.readFileSync(path.join(MODEL, 'scheduler/scheduler_config.json'), 'utf8')) as Record<string, unknown>;

  it('has the timesteps, sigmas and initial sigma of every scheduler and step count, to 1e-5', () => {
    const reference = readReference().schedulers;
    expect(Object.keys(reference).sort()).toEqual([...SCHEDULER_NAMES].sort());
    for (const name of SCHEDULER_NAMES) {
      for (const [steps, expected] of Object.entries(reference[name]!)) {
        const s = createScheduler(resolveSchedulerConfig(schedulerFile(), name), Number(steps));
        const what = `${name} at ${steps} steps`;
        expect(s.timesteps.length, what).toBe(expected.timesteps.length);
        expect(maxDifference(s.timesteps, expected.timesteps), what).toBeLessThanOrEqual(1e-5);
        if (expected.sigmas) {
          expect(s.sigmas?.length, what).toBe(expected.sigmas.length);
          expect(maxDifference(s.sigmas!, expected.sigmas), what).toBeLessThanOrEqual(1e-5);
        }
        expect(Math.abs(s.initNoiseSigma - expected.init_noise_sigma), what).toBeLessThanOrEqual(1e-5);
      }
    }
  });

  describe('whole generations from the given latents', () => {
    let pipeline: StableDiffusionPipeline;
    beforeAll(async () => {
      pipeline = await loadStableDiffusionPipeline(MODEL, { executionProviders: ['cpu'] });
    });
    afterAll(() => pipeline?.release());

    it.each(readReferenceCases())('reproduces case %# (%s) at a PSNR of 40 dB or more', async (_, c) => {
      const result = await pipeline.generateWithPixels(
        {
          prompt: c.prompt,
          negativePrompt: c.negative,
          guidanceScale: c.guidance,
          steps: c.steps,
          width: c.size,
          height: c.size,
          seed: c.seed,
          numImages: 1,
          scheduler: c.scheduler,
          latents: float32File(c.latents),
        },
        { signal: new AbortController().signal, onStep() {} },
      );
      const expected = float32File(c.image_f32);
      const actual = result.pixels[0]!;
      expect(actual.length).toBe(expected.length);
      let squared = 0;
      for (let i = 0; i < actual.length; i++) squared += (actual[i]! - expected[i]!) ** 2;
      const psnr = 10 * Math.log10(1 / (squared / actual.length));
      expect(psnr).toBeGreaterThanOrEqual(40);
    });
  });
});

function readReferenceCases(): [string, CaseReference][] {
  if (!fs.existsSync(path.join(REFERENCE, 'reference.json'))) return [];
  return readReference().pipelines.map((c) => [c.scheduler, c]);
}
