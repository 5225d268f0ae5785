import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GenerateRequest, LoadOptions, StepReport } from '../../../src/pipelines/pipeline.js';
import { CLIP_MAX_LENGTH, loadClipTokenizer } from '../../../src/pipelines/clip-tokenizer.js';
import { stableDiffusionXLDeclaration } from '../../../src/pipelines/stable-diffusion-xl/declaration.js';
import { loadStableDiffusionXLPipeline, type StableDiffusionXLPipeline } from '../../../src/pipelines/stable-diffusion-xl/pipeline.js';
import { psnr, type SdxlFixtureOptions, TINY_XL, writeSdxlFixture } from '../../support/sdxl-fixtures.js';
import { bytesPatch } from '../../support/graph-patch.js';

const REQUEST: GenerateRequest = { prompt: 'a red fox', negativePrompt: 'blurry', steps: 3, guidanceScale: 5, width: 64, height: 32, seed: 7, numImages: 1 };
const sha = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');
const WIDTH = TINY_XL.widths[0] + TINY_XL.widths[1];

let root: string;
const pipelines: StableDiffusionXLPipeline[] = [];
async function load(name: string, options: SdxlFixtureOptions = {}, loadOptions: Partial<LoadOptions> = {}): Promise<StableDiffusionXLPipeline> {
  const dir = path.join(root, name);
  await fs.stat(dir).catch(() => writeSdxlFixture(dir, options));
  const p = await loadStableDiffusionXLPipeline(dir, { executionProviders: ['cpu'], ...loadOptions });
  pipelines.push(p);
  return p;
}
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-sdxl-pipeline-'));
});
afterAll(async () => {
  await Promise.all(pipelines.map((p) => p.release()));
  await fs.rm(root, { recursive: true, force: true });
});

const hooks = (onStep: (s: StepReport) => void = () => {}) => ({ signal: new AbortController().signal, onStep });
const run = (p: StableDiffusionXLPipeline, change: Partial<GenerateRequest> = {}) => p.generateWithPixels({ ...REQUEST, ...change }, hooks());

/** The feeds of every UNet run while `fn` runs. */
async function unetFeeds(fn: () => Promise<unknown>): Promise<Record<string, ort.Tensor>[]> {
  // Every session is an instance of onnxruntime's InferenceSession class, whatever its factory type says.
  const spy = vi.spyOn((ort.InferenceSession as unknown as { prototype: ort.InferenceSession }).prototype, 'run');
  try {
    await fn();
    return spy.mock.calls.map(([feeds]) => feeds as Record<string, ort.Tensor>).filter((feeds) => 'time_ids' in feeds);
  } finally {
    spy.mockRestore();
  }
}
const floats = (t: ort.Tensor) => Array.from(t.data as Float32Array);
/** Equal to float32 rounding: onnxruntime may sum in another order for another batch size. */
const expectClose = (actual: number[], expected: ArrayLike<number>) => {
  expect(actual).toHaveLength(expected.length);
  expect(Math.max(...actual.map((v, i) => Math.abs(v - expected[i]!)))).toBeLessThan(1e-6);
};

/** What diffusers' encode_prompt gives for `texts` with the fixture's encoders, run here directly: [rows, 77, 16] and [rows, 6]. */
async function encodeDirectly(dir: string, texts: string[]): Promise<{ hidden: Float32Array; pooled: Float32Array }> {
  const parts: Float32Array[][] = [];
  for (const [i, sub] of ['', '_2'].entries()) {
    const tokenizer = await loadClipTokenizer({ dir: path.join(dir, `tokenizer${sub}`), tokenizerJson: null, vocab: path.join(dir, `tokenizer${sub}/vocab.json`), merges: path.join(dir, `tokenizer${sub}/merges.txt`) });
    const ids = texts.flatMap((t) => Array.from(tokenizer.encode(t), BigInt));
    const session = await ort.InferenceSession.create(path.join(dir, `text_encoder${sub}/model.onnx`));
    const out = await session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids), [texts.length, CLIP_MAX_LENGTH]) });
    parts.push([out[`hidden_states.${TINY_XL.layers - 1}`]!.data as Float32Array, ...(i === 1 ? [out.text_embeds!.data as Float32Array] : [])]);
    await session.release();
  }
  const [[first], [second, pooled]] = parts as [[Float32Array], [Float32Array, Float32Array]];
  const hidden = new Float32Array(texts.length * CLIP_MAX_LENGTH * WIDTH);
  for (let t = 0; t < texts.length * CLIP_MAX_LENGTH; t++) {
    hidden.set(first.subarray(t * 8, t * 8 + 8), t * WIDTH);
    hidden.set(second.subarray(t * 8, t * 8 + 8), t * WIDTH + 8);
  }
  return { hidden, pooled };
}

describe('the SDXL pipeline on an Optimum-layout fixture', () => {
  let p: StableDiffusionXLPipeline;
  beforeAll(async () => {
    p = await load('base');
  });

  it("conditions the UNet as diffusers does: both encoders' penultimate hidden states side by side, the second's pooled text_embeds, rows [negative, prompt]", async () => {
    const feeds = await unetFeeds(() => run(p));
    expect(feeds).toHaveLength(3);
    const expected = await encodeDirectly(p.folder.dir, ['blurry', 'a red fox']);
    expect(feeds[0]!.encoder_hidden_states!.dims).toEqual([2, 77, WIDTH]);
    expect(floats(feeds[0]!.encoder_hidden_states!)).toEqual(Array.from(expected.hidden));
    expect(floats(feeds[0]!.text_embeds!)).toEqual(Array.from(expected.pooled));
  });

  it("makes the same image from the prompts' embeddings as from the prompts", async () => {
    const { hidden, pooled } = await encodeDirectly(p.folder.dir, ['blurry', 'a red fox']);
    const row = 77 * WIDTH;
    const fromEmbeddings = await run(p, {
      prompt: 'ignored',
      negativePrompt: 'ignored too',
      embeddings: {
        negative: { data: hidden.slice(0, row), dims: [1, 77, WIDTH] },
        prompt: { data: hidden.slice(row), dims: [1, 77, WIDTH] },
        negativePooled: { data: pooled.slice(0, TINY_XL.pooled), dims: [1, TINY_XL.pooled] },
        pooled: { data: pooled.slice(TINY_XL.pooled), dims: [1, TINY_XL.pooled] },
      },
    });
    expect(sha(fromEmbeddings.images[0]!.data)).toBe(sha((await run(p)).images[0]!.data));
  });

  it('runs the unconditional half only above guidance 1, both halves of every image in one UNet batch', async () => {
    const batches = async (change: Partial<GenerateRequest>) => (await unetFeeds(() => run(p, change))).map((f) => [f.sample!.dims[0], f.encoder_hidden_states!.dims[0], f.text_embeds!.dims[0], f.time_ids!.dims[0]]);
    expect(await batches({ numImages: 2 })).toEqual(Array(3).fill([4, 4, 4, 4]));
    expect(await batches({ numImages: 2, guidanceScale: 1 })).toEqual(Array(3).fill([2, 2, 2, 2]));
    const alone = sha((await run(p, { guidanceScale: 1 })).images[0]!.data);
    expect(sha((await run(p, { guidanceScale: 0, negativePrompt: 'a blue whale' })).images[0]!.data)).toBe(alone);
    expect(sha((await run(p)).images[0]!.data)).not.toBe(alone);
  });

  it('gives zeros for no negative prompt (force_zeros_for_empty_prompt), and the encoded "" for an empty one', async () => {
    const [zeros] = await unetFeeds(() => run(p, { negativePrompt: null }));
    const row = 77 * WIDTH;
    expect(floats(zeros!.encoder_hidden_states!).slice(0, row).every((v) => v === 0)).toBe(true);
    expect(floats(zeros!.text_embeds!).slice(0, TINY_XL.pooled).every((v) => v === 0)).toBe(true);
    const positive = await encodeDirectly(p.folder.dir, ['a red fox']);
    expect(floats(zeros!.encoder_hidden_states!).slice(row)).toEqual(Array.from(positive.hidden));

    const [empty] = await unetFeeds(() => run(p, { negativePrompt: '' }));
    const encodedEmpty = await encodeDirectly(p.folder.dir, ['']);
    expectClose(floats(empty!.encoder_hidden_states!).slice(0, row), encodedEmpty.hidden);
    expectClose(floats(empty!.text_embeds!).slice(0, TINY_XL.pooled), encodedEmpty.pooled);
    expect(encodedEmpty.pooled.some((v) => v !== 0)).toBe(true);

    const unforced = await load('unforced', { forceZeros: false });
    const [noNegative] = await unetFeeds(() => run(unforced, { negativePrompt: null }));
    expect(floats(noNegative!.encoder_hidden_states!)).toEqual(floats(empty!.encoder_hidden_states!));
  });

  it('feeds time ids original size + crop top-left + target size, defaulting to (height, width), (0, 0), (height, width)', async () => {
    const [defaults] = await unetFeeds(() => run(p));
    expect(floats(defaults!.time_ids!)).toEqual([32, 64, 0, 0, 32, 64, 32, 64, 0, 0, 32, 64]);
    const [given] = await unetFeeds(() => run(p, { originalSize: [1024, 768], cropsCoordsTopLeft: [16, 8], targetSize: [512, 384], guidanceScale: 1 }));
    expect(floats(given!.time_ids!)).toEqual([1024, 768, 16, 8, 512, 384]);
    expect(sha((await run(p, { originalSize: [1024, 768] })).images[0]!.data)).not.toBe(sha((await run(p)).images[0]!.data));
    await expect(run(p, { cropsCoordsTopLeft: [-1, 0] })).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: 'cropsCoordsTopLeft must be two numbers of at least 0, not [-1,0]' });
  });

  it('runs every scheduler it declares, each to its own image, and the model default (Euler) when the request names none', async () => {
    const hashes = await Promise.all(stableDiffusionXLDeclaration.schedulers.map(async (scheduler) => sha((await run(p, { scheduler })).images[0]!.data)));
    expect(new Set(hashes).size).toBe(stableDiffusionXLDeclaration.schedulers.length);
    expect(sha((await run(p, { scheduler: null })).images[0]!.data)).toBe(hashes[stableDiffusionXLDeclaration.schedulers.indexOf('euler')]);
  });

  it('reports every step with an SDXL-projected preview, makes image i with seed + i, and stops when aborted', async () => {
    const steps: StepReport[] = [];
    const batch = await p.generate({ ...REQUEST, scheduler: 'euler_ancestral', numImages: 2 }, hooks((s) => steps.push(s)));
    expect(steps.map((s) => [s.index, s.count])).toEqual([[1, 3], [2, 3], [3, 3]]);
    const preview = steps[2]!.preview();
    expect([preview.width, preview.height, preview.data.length]).toEqual([64, 32, 64 * 32 * 3]); // 64 px on the longer side
    expect(batch.images.map((i) => [i.seed, i.width, i.height])).toEqual([[7, 64, 32], [8, 64, 32]]);
    expect(sha(batch.images[1]!.data)).toBe(sha((await p.generate({ ...REQUEST, scheduler: 'euler_ancestral', seed: 8 }, hooks())).images[0]!.data));
    const abort = new AbortController();
    const reason = new Error('stop');
    await expect(p.generate({ ...REQUEST, steps: 10 }, { signal: abort.signal, onStep: (s) => s.index === 2 && abort.abort(reason) })).rejects.toBe(reason);
  });

  it("refuses sizes its UNet cannot take, and embeddings that do not fit it", async () => {
    await expect(run(p, { width: 72 })).rejects.toThrow("width must be a positive multiple of 16 (8 per latent pixel, times 2 for this model's UNet, which halves the latents as it goes down)");
    const prompt = { data: new Float32Array(77 * 12), dims: [1, 77, 12] };
    const pooled = { data: new Float32Array(TINY_XL.pooled), dims: [1, TINY_XL.pooled] };
    await expect(run(p, { negativePrompt: null, embeddings: { prompt, pooled } })).rejects.toThrow("this model's UNet takes prompt embeddings 16 wide, not 12");
    await expect(run(p, { embeddings: { prompt: { data: new Float32Array(77 * 16), dims: [1, 77, 16] } } })).rejects.toThrow('prompt embeddings need their pooled embedding [1, P] too');
    const good = { data: new Float32Array(10 * 16), dims: [1, 10, 16] };
    await expect(run(p, { embeddings: { prompt: good, pooled, negative: { data: new Float32Array(77 * 16), dims: [1, 77, 16] }, negativePooled: pooled } })).rejects.toThrow(
      "negative prompt embeddings must have the prompt's shape ([1, 10, 16] and [1, 6]), not [1, 77, 16] and [1, 6]",
    );
    expect((await run(p, { negativePrompt: null, embeddings: { prompt: good, pooled } })).images).toHaveLength(1);
  });

  it('merges a graph patch (a LoRA) into the UNet it names before opening it', async () => {
    const replacement = path.join(root, 'half-unet');
    await writeSdxlFixture(replacement, { float16: true });
    const replacementBytes = new Uint8Array(await fs.readFile(path.join(replacement, 'unet/model.onnx')));
    const apply = vi.fn((_: Uint8Array) => replacementBytes);
    const patched = await load('base', {}, { graphPatches: [bytesPatch(stableDiffusionXLDeclaration.lora.target, apply)] });
    expect(apply).toHaveBeenCalledOnce();
    expect(sha(apply.mock.calls[0]![0])).toBe(sha(new Uint8Array(await fs.readFile(path.join(root, 'base/unet/model.onnx')))));
    expect(patched.sessions.io.sample.type).toBe('float16');
    expect(p.sessions.io.sample.type).toBe('float32');
  });
});

describe('the SDXL pipeline on float16 graphs', () => {
  it('feeds every UNet input as float16, and decodes with the VAE upcast to float32, close to the float32 graphs', async () => {
    const half = await load('float16', { float16: true });
    const feeds = await unetFeeds(() => run(half));
    expect(Object.fromEntries(Object.entries(feeds[0]!).map(([k, t]) => [k, t.type]))).toEqual({
      sample: 'float16',
      timestep: 'float16',
      encoder_hidden_states: 'float16',
      text_embeds: 'float16',
      time_ids: 'float16',
    });
    expect(half.sessions.vaeUpcast).toBe(true);
    expect(half.sessions.io.latentSample.type).toBe('float32');
    const full = await load('base');
    expect(psnr((await run(half)).pixels[0]!, (await run(full)).pixels[0]!)).toBeGreaterThan(30);
  });

  it("runs a float16 VAE in float32 where its config says force_upcast (as diffusers' upcast_vae), and as it is where it says not", async () => {
    const twin = (await run(await load('vae-float32', { halfVae: 'float32' }))).pixels[0]!;
    const upcast = await load('vae-upcast', { halfVae: 'float16', forceUpcast: true });
    expect([upcast.sessions.vaeUpcast, upcast.sessions.io.latentSample.type]).toEqual([true, 'float32']);
    const upcastPixels = (await run(upcast)).pixels[0]!;
    expect(Math.max(...upcastPixels.map((v, i) => Math.abs(v - twin[i]!)))).toBeLessThan(1e-6);

    const asIs = await load('vae-as-is', { halfVae: 'float16', forceUpcast: false });
    expect([asIs.sessions.vaeUpcast, asIs.sessions.io.latentSample.type]).toEqual([false, 'float16']);
    const halfPixels = (await run(asIs)).pixels[0]!;
    expect(Math.max(...halfPixels.map((v, i) => Math.abs(v - twin[i]!)))).toBeGreaterThan(1e-4);
  });
});

describe('the SDXL pipeline on a folder without text encoders', () => {
  it('takes prompts only as embeddings, with zeros or given embeddings for the negative half', async () => {
    const p = await load('embeddings-only', { withoutTextEncoders: true });
    expect(p.sessions.textEncoders).toBeNull();
    expect(p.embeddingWidth).toBe(WIDTH);
    await expect(run(p)).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: 'this model has no text encoders: its prompts must come as embeddings' });
    const prompt = { data: Float32Array.from({ length: 77 * WIDTH }, (_, i) => Math.sin(i)), dims: [1, 77, WIDTH] };
    const pooled = { data: Float32Array.from({ length: TINY_XL.pooled }, (_, i) => Math.cos(i)), dims: [1, TINY_XL.pooled] };
    await expect(run(p, { embeddings: { prompt, pooled } })).rejects.toThrow(/a negative prompt must come as embeddings/);
    const zeros = await run(p, { negativePrompt: null, embeddings: { prompt, pooled } });
    const given = await run(p, { negativePrompt: null, embeddings: { prompt, pooled, negative: prompt, negativePooled: pooled } });
    expect(sha(zeros.images[0]!.data)).not.toBe(sha(given.images[0]!.data));
    // A negative equal to the prompt cancels guidance: the image is the prompt's alone.
    const alone = (await run(p, { guidanceScale: 1, embeddings: { prompt, pooled } })).pixels[0]!;
    expect(Math.max(...given.pixels[0]!.map((v, i) => Math.abs(v - alone[i]!)))).toBeLessThan(1e-5);
  });
});
