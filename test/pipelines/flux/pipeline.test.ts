import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KilnError } from '../../../src/errors.js';
import { type FluxPipeline, loadFluxPipeline } from '../../../src/pipelines/flux/pipeline.js';
import type { GenerateRequest, LoadOptions, RgbImage } from '../../../src/pipelines/pipeline.js';
import { SeededRandom } from '../../../src/pipelines/random.js';
import { fluxTransformerGraph, type FluxFixtureOptions, TINY_FLUX, writeFluxFixture } from '../../support/flux-fixtures.js';
import { bytesPatch } from '../../support/graph-patch.js';

const dirs: string[] = [];
const pipelines: FluxPipeline[] = [];
async function load(options: FluxFixtureOptions, loadOptions: Partial<LoadOptions> = {}): Promise<FluxPipeline> {
  const dir = await writeFluxFixture(await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-flux-')), options);
  dirs.push(dir);
  const pipeline = await loadFluxPipeline(dir, { executionProviders: ['cpu'], intraOpThreads: 1, ...loadOptions });
  pipelines.push(pipeline);
  return pipeline;
}
afterAll(async () => {
  await Promise.all(pipelines.splice(0).map((p) => p.release()));
  await Promise.all(dirs.splice(0).map((d) => fs.rm(d, { recursive: true, force: true })));
});

const request = (over: Partial<GenerateRequest> = {}): GenerateRequest => ({
  prompt: 'a red fox at dusk',
  negativePrompt: null,
  steps: 3,
  guidanceScale: 3.5,
  width: 64,
  height: 48,
  seed: 7,
  numImages: 1,
  ...over,
});
const hooks = (onStep: (index: number, count: number, preview: () => RgbImage) => void = () => {}) => ({
  signal: new AbortController().signal,
  onStep: ({ index, count, preview }: { index: number; count: number; preview: () => RgbImage }) => onStep(index, count, preview),
});
const refusal = async (promise: Promise<unknown>) => {
  const err = await promise.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(KilnError);
  return err as KilnError;
};
const same = (a: RgbImage, b: RgbImage) => Buffer.from(a.data).equals(Buffer.from(b.data));

describe('generating with FLUX.1 from a prompt', () => {
  let dev: FluxPipeline;
  beforeAll(async () => {
    dev = await load({ layout: 'optimum', variant: 'dev' });
  });

  it('encodes the prompt with CLIP and T5, reports every step with a preview, and makes the image size asked for', async () => {
    const steps: number[] = [];
    let preview: RgbImage | undefined;
    const result = await dev.generate(request(), hooks((index, count, p) => {
      steps.push(index);
      expect(count).toBe(3);
      preview = p();
    }));
    expect(steps).toEqual([1, 2, 3]);
    expect(preview).toMatchObject({ width: 64, height: 48 }); // 64 px on the longer side
    expect(preview!.data).toHaveLength(64 * 48 * 3);
    expect(result.images).toHaveLength(1);
    expect(result.images[0]).toMatchObject({ width: 64, height: 48, seed: 7 });
    expect(result.images[0]!.data).toHaveLength(64 * 48 * 3);
    expect(new Set(result.images[0]!.data).size).toBeGreaterThan(50);
  });

  it('makes the same image from the same inputs, and another for another seed, prompt or guidance', async () => {
    const [a, b, seed, prompt, guidance] = await Promise.all([
      dev.generate(request(), hooks()),
      dev.generate(request(), hooks()),
      dev.generate(request({ seed: 8 }), hooks()),
      dev.generate(request({ prompt: 'a blue whale' }), hooks()),
      dev.generate(request({ guidanceScale: 1.5 }), hooks()),
    ]);
    expect(same(a.images[0]!, b.images[0]!)).toBe(true);
    for (const other of [seed, prompt, guidance]) expect(same(a.images[0]!, other.images[0]!)).toBe(false);
  });

  it('makes image i of a batch from seed + i, as a generation of that image alone', async () => {
    const batch = await dev.generate(request({ numImages: 2 }), hooks());
    const second = await dev.generate(request({ seed: 8 }), hooks());
    expect(batch.images.map((i) => i.seed)).toEqual([7, 8]);
    expect(Buffer.from(batch.images[1]!.data).equals(Buffer.from(second.images[0]!.data))).toBe(true);
  });

  it('uses given embeddings instead of the prompt, and refuses embeddings of the wrong shape', async () => {
    const random = new SeededRandom(3);
    const embeddings = (length: number, width: number, pooled: number) => ({
      prompt: { data: random.normals(length * width), dims: [1, length, width] },
      pooled: { data: random.normals(pooled), dims: [1, pooled] },
    });
    const given = embeddings(5, TINY_FLUX.joint, TINY_FLUX.pooled);
    const a = await dev.generate(request({ prompt: 'ignored', embeddings: given }), hooks());
    const b = await dev.generate(request({ prompt: 'also ignored', embeddings: given }), hooks());
    expect(same(a.images[0]!, b.images[0]!)).toBe(true);
    const wide = await refusal(dev.generate(request({ embeddings: embeddings(5, 9, TINY_FLUX.pooled) }), hooks()));
    expect(wide).toMatchObject({ code: 'BAD_USER_INPUT', message: 'prompt embeddings must be 8 wide for this model, not 9' });
    const pooled = await refusal(dev.generate(request({ embeddings: embeddings(5, TINY_FLUX.joint, 2) }), hooks()));
    expect(pooled.message).toBe('pooled prompt embeddings must be 6 wide for this model, not 2');
    const none = await refusal(dev.generate(request({ embeddings: { prompt: given.prompt } }), hooks()));
    expect(none.message).toMatch(/needs pooled prompt embeddings/);
  });

  it('refuses sizes that are not multiples of 16, latents of the wrong length, no steps and other schedulers', async () => {
    expect((await refusal(dev.generate(request({ width: 72 }), hooks()))).message).toBe('width must be a positive multiple of 16');
    expect((await refusal(dev.generate(request({ steps: 0 }), hooks()))).message).toBe('steps must be a whole number of at least 1');
    const latents = await refusal(dev.generate(request({ latents: new Float32Array(10) }), hooks()));
    expect(latents.message).toBe('latents must hold 768 values ([numImages, 16, height/8, width/8]), not 10');
    const scheduler = await refusal(dev.generate(request({ scheduler: 'ddim' }), hooks()));
    expect(scheduler).toMatchObject({ message: 'FLUX.1 runs only the flow_match_euler scheduler, not "ddim"', extensions: { field: 'scheduler' } });
    await expect(dev.generate(request({ scheduler: 'flow_match_euler', steps: 1 }), hooks())).resolves.toBeDefined();
  });

  it('stops between steps once the signal is aborted', async () => {
    const abort = new AbortController();
    const reason = new Error('stop');
    const seen: number[] = [];
    const result = dev.generate(request({ steps: 5 }), {
      signal: abort.signal,
      onStep: ({ index }) => {
        seen.push(index);
        if (index === 2) abort.abort(reason);
      },
    });
    await expect(result).rejects.toBe(reason);
    expect(seen).toEqual([1, 2]);
  });
});

describe('FLUX.1 variants, layouts and exports', () => {
  it('runs schnell without a guidance input: the guidance scale changes nothing', async () => {
    const schnell = await load({ layout: 'optimum', variant: 'schnell' });
    const a = await schnell.generate(request({ guidanceScale: 0 }), hooks());
    const b = await schnell.generate(request({ guidanceScale: 7 }), hooks());
    expect(same(a.images[0]!, b.images[0]!)).toBe(true);
  });

  it('runs a BFL-layout folder with an fp16 transformer (float16 in and out) and older 3-D position ids', async () => {
    const bfl = await load({ layout: 'bfl', variant: 'dev', precisions: ['bf16', 'fp16'], idsWithBatch: true });
    expect(bfl.sessions.transformer.hiddenStates.type).toBe('float16');
    expect(bfl.sessions.transformer.imgIds.shape).toHaveLength(3);
    const result = await bfl.generate(request({ numImages: 2 }), hooks());
    expect(result.images.map((i) => [i.width, i.height])).toEqual([[64, 48], [64, 48]]);
    expect(same(result.images[0]!, result.images[1]!)).toBe(false);
  });

  it('opens a transformer whose weights lie in an external data file, by path', async () => {
    const inside = await load({ layout: 'optimum', variant: 'dev' });
    const outside = await load({ layout: 'optimum', variant: 'dev', externalWeights: true });
    expect(outside.memory.weightBytes).toBeGreaterThan(inside.memory.weightBytes - 1);
    const [a, b] = [await inside.generate(request(), hooks()), await outside.generate(request(), hooks())];
    expect(same(a.images[0]!, b.images[0]!)).toBe(true);
  });

  it("runs the transformer a graph patch gives (a LoRA merge), with the graph's external data still found beside it", async () => {
    const options: FluxFixtureOptions = { layout: 'optimum', variant: 'dev', externalWeights: true };
    const identity = await load(options, { graphPatches: [bytesPatch('transformer/model.onnx', (bytes) => bytes)] });
    const plain = await load(options);
    const other = fluxTransformerGraph({ ...options, transformerSeed: 99 });
    const patched = await load(options, { graphPatches: [bytesPatch('transformer/model.onnx', () => other)] });
    const otherModel = await load({ layout: 'optimum', variant: 'dev', transformerSeed: 99 });
    const [i, p, q, o] = await Promise.all([identity, plain, patched, otherModel].map((m) => m.generate(request(), hooks())));
    expect(same(i!.images[0]!, p!.images[0]!)).toBe(true);
    expect(same(q!.images[0]!, p!.images[0]!)).toBe(false);
    expect(same(q!.images[0]!, o!.images[0]!)).toBe(true);
  });

  it('refuses a graph patch for a graph the model does not have', async () => {
    const err = await refusal(load({ layout: 'bfl', variant: 'dev' }, { graphPatches: [bytesPatch('transformer/model.onnx', (b) => b)] }));
    expect(err).toMatchObject({ code: 'BAD_USER_INPUT', message: 'the graph patch is for transformer/model.onnx, which this model does not have (its transformer is transformer.opt/fp16/model.onnx)' });
  });

  it('refuses a prompt for a folder without text encoders', async () => {
    const bare = await load({ layout: 'optimum', variant: 'dev', textEncoders: false });
    expect(bare.folder.tokenizers).toBeNull();
    const err = await refusal(bare.generate(request(), hooks()));
    expect(err.message).toBe('this model has no text encoders: give the prompt as embeddings');
  });
});

describe('the memory check before loading', () => {
  it('refuses with INSUFFICIENT_MEMORY a model whose weights would not fit, before opening any session', async () => {
    // 4 TiB of weights in a sparse external data file: nothing is read, nothing is allocated.
    const started = performance.now();
    const err = await refusal(load({ layout: 'optimum', variant: 'dev', hugeWeightBytes: 2 ** 42 }));
    expect(err.code).toBe('INSUFFICIENT_MEMORY');
    expect(err.message).toMatch(/^the FLUX\.1 dev model in kiln-flux-\w+ needs about 6144\.0 GiB of memory to load \(4096\.0 GiB of weights × 1\.5 for activations\), and [\d.]+ GiB is available$/);
    expect(err.extensions).toMatchObject({ weightBytes: expect.any(Number), requiredBytes: expect.any(Number), availableBytes: expect.any(Number) });
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
