import type * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFluxPipeline, type FluxPipeline } from '../../../src/pipelines/flux/pipeline.js';
import { flowMatchSchedule, parseFlowMatchConfig } from '../../../src/pipelines/flux/schedule.js';
import type { GenerateRequest } from '../../../src/pipelines/pipeline.js';
import { FLUX_TINY } from '../../support/flux-fixtures.js';
import { type CaseReference, caseTensor, hasFluxReference, maxDifference, psnr, readFluxReference } from '../../support/flux-reference.js';

/**
 * Kiln against diffusers' own FluxPipeline on the same model (../shared/fixtures: flux-tiny, a
 * real FLUX.1-dev architecture with random weights, and flux-tiny-reference, diffusers' numbers
 * for it). Packing and ids are in latents.test.ts.
 */
const cases = () => (hasFluxReference() ? readFluxReference().cases.map((c) => [c.name, c] as [string, CaseReference]) : []);

const requestFor = (c: CaseReference): GenerateRequest => ({
  prompt: '',
  negativePrompt: null,
  steps: c.num_inference_steps,
  guidanceScale: c.guidance_scale,
  width: c.width,
  height: c.height,
  seed: 0,
  numImages: 1,
  latents: caseTensor(c, c.files.initial_latents_unpacked!),
  embeddings: {
    prompt: { data: caseTensor(c, c.files.prompt_embeds!), dims: c.files.prompt_embeds!.shape },
    pooled: { data: caseTensor(c, c.files.pooled_prompt_embeds!), dims: c.files.pooled_prompt_embeds!.shape },
  },
});

describe.skipIf(!hasFluxReference())("conformance with diffusers' FluxPipeline on flux-tiny", () => {
  it.each(['dev', 'schnell'] as const)('has the %s timesteps, sigmas and mu of every recorded step count and sequence length, to the bit', (variant) => {
    const { scheduler_config, entries } = readFluxReference().schedules[variant];
    const config = parseFlowMatchConfig(scheduler_config);
    expect(entries.length).toBeGreaterThanOrEqual(8);
    for (const e of entries) {
      const what = `${variant}, ${e.num_inference_steps} steps at ${e.image_seq_len} tokens`;
      const s = flowMatchSchedule(config, e.num_inference_steps, e.image_seq_len);
      expect(Array.from(s.timesteps), what).toEqual(e.timesteps.map(Math.fround));
      expect(Array.from(s.sigmas), what).toEqual(e.sigmas.map(Math.fround));
      expect(s.sigmas.at(-1), what).toBe(0);
      expect(s.mu, what).toBeCloseTo(e.mu, 12);
    }
  });

  it.each(cases())("schedules case %s as the pipeline did (mu from the packed sequence length, below the base for small images)", (_, c) => {
    const config = parseFlowMatchConfig(readFluxReference().schedules.dev.scheduler_config);
    const s = flowMatchSchedule(config, c.num_inference_steps, c.packed_seq_len);
    expect(s.mu).toBeCloseTo(c.mu, 12);
    expect(Array.from(s.timesteps)).toEqual(c.timesteps.map(Math.fround));
    expect(Array.from(s.sigmas)).toEqual(c.sigmas.map(Math.fround));
  });

  describe('whole generations from the given embeddings and latents', () => {
    let pipeline: FluxPipeline;
    beforeAll(async () => {
      pipeline = await loadFluxPipeline(FLUX_TINY, { executionProviders: ['cpu'] });
    });
    afterAll(() => pipeline?.release());

    it.each(cases())('feeds the transformer what diffusers fed it at every step of %s, and steps the latents as it did', async (_, c) => {
      const session = pipeline.sessions.transformer.session;
      const run = session.run.bind(session);
      const seen: { feeds: Record<string, ort.Tensor>; output: Float32Array }[] = [];
      session.run = (async (feeds: Record<string, ort.Tensor>) => {
        const out = await run(feeds);
        seen.push({ feeds, output: Float32Array.from(out.out_hidden_states!.data as Float32Array) });
        return out;
      }) as typeof session.run;
      try {
        await pipeline.generate(requestFor(c), { signal: new AbortController().signal, onStep() {} });
      } finally {
        session.run = run;
      }
      expect(seen).toHaveLength(c.steps.length);
      const imgIds = caseTensor(c, c.files.img_ids!);
      for (const [i, step] of c.steps.entries()) {
        const { feeds, output } = seen[i]!;
        const what = `${c.name} step ${i}`;
        // The latents going in are diffusers' (the previous step's output), to float32 rounding.
        expect(maxDifference(feeds.hidden_states!.data as Float32Array, caseTensor(c, step.hidden_states_in)), what).toBeLessThanOrEqual(1e-6);
        expect(Array.from(feeds.timestep!.data as Float32Array), what).toEqual(step.transformer_timestep_input.map(Math.fround));
        expect(Array.from(feeds.guidance!.data as Float32Array), what).toEqual(step.guidance_input!.map(Math.fround));
        expect(feeds.img_ids!.dims, what).toEqual(c.files.img_ids!.shape);
        expect(Array.from(feeds.img_ids!.data as Float32Array), what).toEqual(Array.from(imgIds));
        expect(feeds.txt_ids!.dims, what).toEqual([c.txt_len, 3]);
        expect((feeds.txt_ids!.data as Float32Array).every((v) => v === 0), what).toBe(true);
        expect(feeds.encoder_hidden_states!.dims, what).toEqual([1, c.txt_len, 32]);
        expect(maxDifference(output, caseTensor(c, step.noise_pred)), what).toBeLessThanOrEqual(1e-5);
      }
    });

    it.each(cases())('reproduces the image of %s at a PSNR of 40 dB or more', async (_, c) => {
      const result = await pipeline.generateWithPixels(requestFor(c), { signal: new AbortController().signal, onStep() {} });
      const expected = caseTensor(c, c.files.image!);
      expect(result.images[0]).toMatchObject({ width: c.width, height: c.height });
      expect(result.pixels[0]!.length).toBe(expected.length);
      expect(psnr(result.pixels[0]!, expected)).toBeGreaterThanOrEqual(40);
    });
  });
});
