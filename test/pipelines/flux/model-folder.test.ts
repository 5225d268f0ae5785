import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fluxModelCapabilities } from '../../../src/pipelines/flux/capabilities.js';
import { FluxFolderError, inspectFluxFolder, looksLikeFluxFolder } from '../../../src/pipelines/flux/model-folder.js';
import { FLUX_DEV_SCHEDULER, FLUX_SCHNELL_SCHEDULER, parseFlowMatchConfig } from '../../../src/pipelines/flux/schedule.js';
import { buildFluxFixture, FLUX_TINY, type FluxFixtureOptions, writeFluxFixture } from '../../support/flux-fixtures.js';
import { writeSdFixture } from '../../support/sd-fixtures.js';
import { hasFluxReference } from '../../support/flux-reference.js';

const dirs: string[] = [];
async function fixture(options: FluxFixtureOptions, change?: (dir: string) => Promise<void>): Promise<string> {
  const dir = await writeFluxFixture(await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-flux-folder-')), options);
  dirs.push(dir);
  await change?.(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => fs.rm(d, { recursive: true, force: true })));
});

/** The problems inspection reports for the folder, or [] when it accepts it. */
async function problems(dir: string): Promise<string[]> {
  try {
    await inspectFluxFolder(dir);
    return [];
  } catch (err) {
    if (!(err instanceof FluxFolderError)) throw err;
    expect(err.code).toBe('BAD_USER_INPUT');
    for (const p of err.problems) expect(err.message).toContain(p);
    return err.problems;
  }
}

describe('recognising a FLUX.1 folder', () => {
  it.skipIf(!hasFluxReference())('reads the shared flux-tiny export as dev without text encoders, with its scheduler and VAE factors', async () => {
    const folder = await inspectFluxFolder(FLUX_TINY);
    expect(folder).toMatchObject({ layout: 'optimum', variant: 'dev', tokenizers: null, maxSequenceLength: 512, jointAttentionDim: 32, pooledProjectionDim: 32 });
    expect(folder.graphs).toEqual({ clip: null, t5: null, transformer: 'transformer/model.onnx', vaeDecoder: 'vae_decoder/model.onnx' });
    expect(folder.io.transformer).toMatchObject({ guidance: 'guidance', output: 'out_hidden_states' });
    expect(folder.io.vae).toEqual({ latent: 'latent_sample', image: 'sample' });
    expect(folder.vae).toEqual({ scalingFactor: 0.3611, shiftFactor: 0.1159 });
    expect(folder.scheduler).toMatchObject({ useDynamicShifting: true, shift: 3, baseShift: 0.5, maxShift: 1.15 });
    expect(folder.defaults).toEqual({ steps: 28, guidanceScale: 3.5, width: 1024, height: 1024 });
  });

  it("reads an Optimum export with text encoders; a transformer without a guidance input is schnell, with schnell's defaults", async () => {
    const dev = await inspectFluxFolder(await fixture({ layout: 'optimum', variant: 'dev' }));
    expect(dev.variant).toBe('dev');
    expect(dev.graphs).toEqual({ clip: 'text_encoder/model.onnx', t5: 'text_encoder_2/model.onnx', transformer: 'transformer/model.onnx', vaeDecoder: 'vae_decoder/model.onnx' });
    expect(dev.io.clip).toEqual({ inputIds: 'input_ids', pooled: 'pooler_output' });
    expect(dev.tokenizers?.t5).toBe(path.join(dev.dir, 'tokenizer_2/tokenizer.json'));
    expect(dev.files).toEqual(buildFluxFixture({ layout: 'optimum', variant: 'dev' }).map((f) => f.path).sort());

    const schnell = await inspectFluxFolder(await fixture({ layout: 'optimum', variant: 'schnell' }));
    expect(schnell).toMatchObject({ variant: 'schnell', maxSequenceLength: 256 });
    expect(schnell.io.transformer.guidance).toBeNull();
    expect(schnell.defaults).toEqual({ steps: 4, guidanceScale: 0, width: 1024, height: 1024 });
    expect(schnell.scheduler).toEqual(parseFlowMatchConfig(FLUX_SCHNELL_SCHEDULER));
  });

  it("reads the BFL/NVIDIA layout, taking the fp16 transformer over the others and FLUX.1's scheduler and VAE for what it lacks", async () => {
    const folder = await inspectFluxFolder(await fixture({ layout: 'bfl', variant: 'dev', precisions: ['bf16', 'fp8', 'fp16'] }));
    expect(folder).toMatchObject({ layout: 'bfl', variant: 'dev', vae: { scalingFactor: 0.3611, shiftFactor: 0.1159 } });
    expect(folder.graphs).toEqual({ clip: 'clip.opt/model.onnx', t5: 't5.opt/model.onnx', transformer: 'transformer.opt/fp16/model.onnx', vaeDecoder: 'vae.opt/model.onnx' });
    expect(folder.io).toMatchObject({ clip: { pooled: 'pooled_embeddings' }, t5: { hiddenStates: 'text_embeddings' }, transformer: { output: 'latent' }, vae: { latent: 'latent', image: 'images' } });
    expect(folder.scheduler).toEqual(parseFlowMatchConfig(FLUX_DEV_SCHEDULER));
    const schnell = await inspectFluxFolder(await fixture({ layout: 'bfl', variant: 'schnell', precisions: ['fp32'] }));
    expect(schnell.scheduler).toEqual(parseFlowMatchConfig(FLUX_SCHNELL_SCHEDULER));
    expect(schnell.defaults.steps).toBe(4);
  });

  it('takes a folder with no text encoders or tokenizers at all as one for embeddings only, and wants all of them once one is there', async () => {
    const bare = await fixture({ layout: 'optimum', variant: 'dev' }, async (d) => {
      for (const part of ['text_encoder', 'text_encoder_2', 'tokenizer', 'tokenizer_2']) await fs.rm(path.join(d, part), { recursive: true });
    });
    const folder = await inspectFluxFolder(bare);
    expect(folder.graphs).toMatchObject({ clip: null, t5: null });
    expect(folder.tokenizers).toBeNull();
    expect(fluxModelCapabilities(folder).textPrompts).toBe(false);
    const partial = await fixture({ layout: 'optimum', variant: 'dev' }, async (d) => {
      await fs.rm(path.join(d, 'text_encoder_2'), { recursive: true });
    });
    expect(await problems(partial)).toEqual(['missing text_encoder_2/model.onnx']);
  });

  it('tells FLUX folders from Stable Diffusion ones without inspecting them', async () => {
    expect(await looksLikeFluxFolder(await fixture({ layout: 'optimum', variant: 'dev' }))).toBe(true);
    expect(await looksLikeFluxFolder(await fixture({ layout: 'bfl', variant: 'dev' }))).toBe(true);
    const sd = await writeSdFixture(await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-flux-folder-')), { layout: 'optimum' });
    dirs.push(sd);
    expect(await looksLikeFluxFolder(sd)).toBe(false);
  });

  it('declares what each model accepts: steps, sizes in steps of 16, guidance for dev only, LoRAs on its transformer', async () => {
    const dev = fluxModelCapabilities(await inspectFluxFolder(await fixture({ layout: 'optimum', variant: 'dev' })));
    expect(dev).toMatchObject({ pipeline: 'flux-onnx', steps: { min: 1, max: 100, default: 28 }, width: { multipleOf: 16, default: 1024 }, guidance: { min: 0, default: 3.5 }, negativePrompt: false, textPrompts: true });
    expect(dev.lora).toEqual({ target: 'transformer/model.onnx' });
    const schnell = fluxModelCapabilities(await inspectFluxFolder(await fixture({ layout: 'bfl', variant: 'schnell' })));
    expect(schnell).toMatchObject({ steps: { default: 4 }, guidance: null, lora: { target: 'transformer.opt/fp16/model.onnx' } });
  });
});

describe('refusing folders Kiln cannot run', () => {
  it('lists every problem of a broken Optimum folder at once', async () => {
    const dir = await fixture({ layout: 'optimum', variant: 'dev' }, async (d) => {
      await fs.rm(path.join(d, 'scheduler'), { recursive: true });
      await fs.rm(path.join(d, 'tokenizer_2/tokenizer.json'));
      await fs.writeFile(path.join(d, 'tokenizer_2/spiece.model'), 'sentencepiece');
      await fs.rm(path.join(d, 'vae_decoder/model.onnx'));
      await fs.writeFile(path.join(d, 'text_encoder/model.onnx'), 'not protobuf at all');
      await fs.writeFile(path.join(d, 'vae_decoder/config.json'), JSON.stringify({ scaling_factor: -1 }));
    });
    const found = await problems(dir);
    expect(found).toEqual(
      expect.arrayContaining([
        'missing scheduler/scheduler_config.json',
        'missing tokenizer_2/tokenizer.json, T5\'s tokenizer (Kiln reads tokenizer.json, not spiece.model)',
        'missing vae_decoder/model.onnx',
        'text_encoder/model.onnx is not a well-formed ONNX file',
        'vae_decoder/config.json: scaling_factor must be a positive number',
      ]),
    );
    expect(found).toHaveLength(5);
  });

  it('refuses FLUX pipelines that are not text to image, inconsistent configs and schedulers Kiln does not implement', async () => {
    const dir = await fixture({ layout: 'optimum', variant: 'schnell' }, async (d) => {
      const index = JSON.parse(await fs.readFile(path.join(d, 'model_index.json'), 'utf8'));
      await fs.writeFile(path.join(d, 'model_index.json'), JSON.stringify({ ...index, _class_name: 'FluxFillPipeline' }));
      await fs.writeFile(path.join(d, 'transformer/config.json'), JSON.stringify({ guidance_embeds: true }));
      await fs.writeFile(path.join(d, 'scheduler/scheduler_config.json'), JSON.stringify({ ...FLUX_SCHNELL_SCHEDULER, use_karras_sigmas: true }));
    });
    const found = await problems(dir);
    expect(found).toEqual([
      'model_index.json names "FluxFillPipeline"; the flux-onnx pipeline runs FluxPipeline (FLUX.1 text to image) only',
      'transformer/config.json says guidance_embeds true, but transformer/model.onnx takes no guidance input',
      "scheduler/scheduler_config.json: use_karras_sigmas is not supported by Kiln's flow-matching scheduler",
    ]);
  });

  it('needs the tokenizers beside a BFL export, which ships none', async () => {
    const dir = await fixture({ layout: 'bfl', variant: 'dev' }, async (d) => {
      await fs.rm(path.join(d, 'tokenizer'), { recursive: true });
      await fs.rm(path.join(d, 'tokenizer_2'), { recursive: true });
    });
    const found = await problems(dir);
    expect(found).toHaveLength(2);
    expect(found[0]).toMatch(/^missing tokenizer\/tokenizer\.json .*CLIP's tokenizer \(the BFL export ships none, and Kiln runs offline/);
    expect(found[1]).toMatch(/^missing tokenizer_2\/tokenizer\.json, T5's tokenizer \(the BFL export ships none/);
  });

  it('refuses the bf16, fp8 and fp4 transformers of the official BFL export, saying for each why onnxruntime cannot run it', async () => {
    const found = await problems(await fixture({ layout: 'bfl', variant: 'dev', precisions: ['bf16', 'fp8', 'fp4'] }));
    expect(found).toEqual([
      'transformer.opt/bf16/model.onnx has input hidden_states in bfloat16, a type onnxruntime-node has no tensors of',
      'transformer.opt/bf16/model.onnx has input encoder_hidden_states in bfloat16, a type onnxruntime-node has no tensors of',
      'transformer.opt/bf16/model.onnx has input pooled_projections in bfloat16, a type onnxruntime-node has no tensors of',
      'transformer.opt/bf16/model.onnx has input timestep in bfloat16, a type onnxruntime-node has no tensors of',
      'transformer.opt/bf16/model.onnx has output latent in bfloat16, a type onnxruntime-node has no tensors of',
      'transformer.opt/fp4/model.onnx holds weights onnxruntime cannot compute with (1 in float4e2m1); it needs an fp16 or fp32 export',
      'transformer.opt/fp4/model.onnx uses operators of "trt", which onnxruntime does not implement (they are TensorRT plugins)',
      'transformer.opt/fp8/model.onnx holds weights onnxruntime cannot compute with (1 in float8e4m3fn); it needs an fp16 or fp32 export',
    ]);
  });

  it('says what a folder that is neither layout lacks', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-flux-folder-'));
    dirs.push(dir);
    expect(await problems(dir)).toEqual(['found neither model_index.json with transformer/ (a Hugging Face Optimum export) nor transformer.opt/ (the BFL/NVIDIA ONNX export)']);
  });
});
