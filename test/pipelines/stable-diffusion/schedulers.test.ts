import { describe, expect, it } from 'vitest';
import { createScheduler, type Scheduler } from '../../../src/pipelines/stable-diffusion/schedulers/scheduler.js';
import { resolveSchedulerConfig, type SchedulerName } from '../../../src/pipelines/stable-diffusion/schedulers/scheduler-config.js';
import { SD15_SCHEDULER } from '../../support/sd-fixtures.js';

/** runwayml/stable-diffusion-v1-5's scheduler/scheduler_config.json. */
const SD15 = SD15_SCHEDULER;
/** stabilityai/sd-turbo's. */
const TURBO = { _class_name: 'EulerDiscreteScheduler', beta_end: 0.012, beta_schedule: 'scaled_linear', beta_start: 0.00085, num_train_timesteps: 1000, prediction_type: 'epsilon', steps_offset: 1, timestep_spacing: 'trailing' };

const make = (file: Record<string, unknown>, name: SchedulerName, steps: number) => createScheduler(resolveSchedulerConfig(file, name), steps);
const close = (actual: ArrayLike<number>, expected: number[], tolerance = 1e-5) => {
  expect(actual.length).toBeGreaterThanOrEqual(expected.length);
  expected.forEach((e, i) => expect(Math.abs(actual[i]! - e), `[${i}]: ${actual[i]} vs ${e}`).toBeLessThanOrEqual(tolerance));
};

// Values diffusers 0.40 computes (set_timesteps) from SD 1.5's config; Euler spaces SD 1.5's
// steps `linspace` because that config does not state a spacing.
describe("SD 1.5's default scheduler config, as diffusers schedules it", () => {
  it('PNDM (the config\'s own): leading spacing plus steps_offset, the second timestep repeated', () => {
    expect(make(SD15, 'pndm', 4).timesteps).toEqual([751, 501, 501, 251, 1]);
    expect(make(SD15, 'pndm', 30).timesteps.slice(0, 5)).toEqual([958, 925, 925, 892, 859]);
    expect(make(SD15, 'pndm', 30).timesteps).toHaveLength(31);
    expect(make(SD15, 'pndm', 30).initNoiseSigma).toBe(1);
  });

  it('Euler and Euler ancestral: linspace timesteps and their interpolated sigmas', () => {
    for (const name of ['euler', 'euler_ancestral'] as const) {
      const four = make(SD15, name, 4);
      close(four.timesteps, [999, 666, 333, 0]);
      close(four.sigmas!, [14.614646911621094, 2.9183084964752197, 0.9323583245277405, 0.029167532920837402, 0]);
      expect(four.initNoiseSigma).toBeCloseTo(14.614646911621094, 5);
      const thirty = make(SD15, name, 30);
      close(thirty.timesteps, [999, 964.5516967773438, 930.1034545898438, 895.6551513671875, 861.2069091796875]);
      close(thirty.sigmas!, [14.614646911621094, 11.917563438415527, 9.814177513122559, 8.158467292785645, 6.84306001663208]);
      expect(thirty.sigmas).toHaveLength(31);
      expect(thirty.sigmas![30]).toBe(0);
    }
  });

  it('DDIM: leading spacing plus steps_offset', () => {
    expect(make(SD15, 'ddim', 4).timesteps).toEqual([751, 501, 251, 1]);
    expect(make(SD15, 'ddim', 30).timesteps.slice(0, 4)).toEqual([958, 925, 892, 859]);
  });

  it('LCM: evenly picked from its 50-step distillation schedule', () => {
    expect(make(SD15, 'lcm', 4).timesteps).toEqual([999, 759, 499, 259]);
    expect(make(SD15, 'lcm', 30).timesteps.slice(0, 6)).toEqual([999, 979, 939, 899, 879, 839]);
  });

  it('agrees with the closed form σ_t = √((1 − ᾱ_t)/ᾱ_t) of the scaled-linear betas', () => {
    const betas = Array.from({ length: 1000 }, (_, i) => (Math.sqrt(0.00085) + (i / 999) * (Math.sqrt(0.012) - Math.sqrt(0.00085))) ** 2);
    let product = 1;
    const sigma = betas.map((b) => ((product *= 1 - b), Math.sqrt((1 - product) / product)));
    const euler = make(SD15, 'euler', 4);
    close(euler.sigmas!, [sigma[999]!, sigma[666]!, sigma[333]!, sigma[0]!], 1e-4);
  });
});

describe('which timestep spacing a scheduler takes from the file', () => {
  it('reads a spacing equal to the file class default as unstated, as in configs newer diffusers re-saved', () => {
    const resaved = { ...SD15, timestep_spacing: 'leading' };
    close(make(resaved, 'euler', 4).timesteps, [999, 666, 333, 0]);
    expect(make(resaved, 'pndm', 4).timesteps).toEqual([751, 501, 501, 251, 1]);
  });

  it("keeps a deliberate spacing: SD-Turbo's trailing, for every scheduler", () => {
    const euler = make(TURBO, 'euler', 1);
    expect(euler.timesteps).toEqual([999]);
    close(euler.sigmas!, [14.614646911621094, 0]);
    expect(euler.initNoiseSigma).toBeCloseTo(14.614646911621094, 5); // trailing starts at σ_max, not √(σ_max² + 1)
    expect(make(TURBO, 'euler_ancestral', 4).timesteps).toEqual([999, 749, 499, 249]);
    expect(make(TURBO, 'ddim', 4).timesteps).toEqual([999, 749, 499, 249]);
  });

  it("uses leading spacing from an Euler config that states it, starting from √(σ² + 1) of the schedule's largest σ", () => {
    const euler = make({ ...TURBO, timestep_spacing: 'leading' }, 'euler', 4);
    expect(euler.timesteps).toEqual([751, 501, 251, 1]);
    expect(euler.sigmas![0]).toBeCloseTo(4.1167, 3); // σ at t = 751
    expect(euler.initNoiseSigma).toBeCloseTo(Math.sqrt(euler.sigmas![0]! ** 2 + 1), 5);
  });
});

describe('scheduler steps', () => {
  const latents = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i + 1));
  const eps = Float32Array.from({ length: 16 }, (_, i) => Math.cos(3 * i));
  const none = () => {
    throw new Error('this scheduler adds no noise');
  };

  it('Euler: one step to σ = 0 lands on x − σ·ε', () => {
    const s = make(TURBO, 'euler', 1);
    const sigma = s.sigmas![0]!;
    const x = latents.map((v) => v * sigma);
    const { prev, denoised } = s.step(0, eps, x, none);
    close(prev, Array.from(x, (v, i) => v - sigma * eps[i]!), 1e-5);
    close(denoised, Array.from(prev));
    expect(s.inputScale(0)).toBeCloseTo(1 / Math.sqrt(sigma ** 2 + 1), 10);
  });

  it('Euler ancestral: adds fresh noise scaled by σ_up on all but the last step', () => {
    const s = make(SD15, 'euler_ancestral', 2);
    const [from, to] = [s.sigmas![0]!, s.sigmas![1]!];
    const up = Math.sqrt((to ** 2 * (from ** 2 - to ** 2)) / from ** 2);
    const zeros = s.step(0, eps, latents, () => new Float32Array(16)).prev;
    const ones = make(SD15, 'euler_ancestral', 2).step(0, eps, latents, () => new Float32Array(16).fill(1)).prev;
    close(Array.from(ones, (v, i) => v - zeros[i]!), new Array(16).fill(up), 1e-5);
    expect(s.step(1, eps, latents, none).prev).toHaveLength(16);
  });

  // When the UNet's ε is the noise actually in the sample, every sampler must recover x₀ and
  // move to √ᾱ_prev·x₀ + √(1 − ᾱ_prev)·ε: a check of the formulas that needs no reference.
  it.each(['ddim', 'pndm'] as const)('%s: recovers x₀ from a consistent ε and renoises it to the next timestep', (name) => {
    const s: Scheduler = make(SD15, name, 4);
    const config = resolveSchedulerConfig(SD15, name);
    const alpha = (t: number) => {
      let p = 1;
      for (let i = 0; i <= t; i++) p *= 1 - (Math.sqrt(config.betaStart) + (i / 999) * (Math.sqrt(config.betaEnd) - Math.sqrt(config.betaStart))) ** 2;
      return p;
    };
    const x0 = latents;
    const noisy = (t: number) => Float32Array.from(x0, (v, i) => Math.sqrt(alpha(t)) * v + Math.sqrt(1 - alpha(t)) * eps[i]!);
    let sample: Float32Array = noisy(s.timesteps[0]!);
    for (let i = 0; i < s.timesteps.length; i++) {
      const { prev, denoised } = s.step(i, eps, sample, none);
      close(denoised, Array.from(x0), 1e-4);
      sample = prev;
    }
    const final = alpha(0);
    close(sample, Array.from(x0, (v, i) => Math.sqrt(final) * v + Math.sqrt(1 - final) * eps[i]!), 1e-4);
  });

  it('LCM: ends on the consistency estimate, renoising with fresh noise in between', () => {
    const s = make(SD15, 'lcm', 2);
    let drawn = 0;
    const noise = () => (drawn++, new Float32Array(16));
    const first = s.step(0, eps, latents, noise);
    const last = s.step(1, eps, first.prev, noise);
    expect(drawn).toBe(1);
    expect(last.prev).toEqual(last.denoised);
  });
});

describe('scheduler settings Kiln refuses', () => {
  it.each([
    [{ ...SD15, thresholding: true }, 'ddim', /thresholding=true/],
    [{ ...SD15, prediction_type: 'sample' }, 'euler_ancestral', /prediction_type="sample" is not supported/],
    [{ ...SD15, skip_prk_steps: false }, 'pndm', /skip_prk_steps=false/],
    [{ ...SD15, timestep_spacing: 'karras' }, 'euler', /timestep_spacing="karras"/],
    [{ ...SD15, beta_schedule: 'squaredcos_cap_v2' }, 'ddim', /beta_schedule="squaredcos_cap_v2"/],
    [{ ...TURBO, use_exponential_sigmas: true }, 'euler', /use_exponential_sigmas=true/],
  ] as const)('%o for %s', (file, name, message) => {
    expect(() => resolveSchedulerConfig(file, name)).toThrow(message);
  });

  it('refuses more LCM steps than its distillation schedule has', () => {
    expect(() => make(SD15, 'lcm', 51)).toThrow(/at most 50 steps/);
    expect(() => make(SD15, 'ddim', 0)).toThrow(RangeError);
  });
});
