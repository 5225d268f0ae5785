import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inspectStableDiffusionFolder } from '../../../src/pipelines/stable-diffusion/model-folder.js';
import { resolveSchedulerConfig } from '../../../src/pipelines/stable-diffusion/schedulers/scheduler-config.js';
import { inspectStableDiffusionXLFolder, isStableDiffusionXLFolder, StableDiffusionXLFolderError } from '../../../src/pipelines/stable-diffusion-xl/model-folder.js';
import { loadStableDiffusionXLPipeline } from '../../../src/pipelines/stable-diffusion-xl/pipeline.js';
import { writeSdFixture } from '../../support/sd-fixtures.js';
import { buildSdxlFixture, hasSdxlReference, SDXL_TINY, type SdxlFixtureOptions, writeSdxlFixture } from '../../support/sdxl-fixtures.js';

const dirs: string[] = [];
async function fixture(options: SdxlFixtureOptions = {}, change?: (dir: string) => Promise<unknown>): Promise<string> {
  const dir = await writeSdxlFixture(await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-sdxl-folder-')), options);
  dirs.push(dir);
  await change?.(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => fs.rm(d, { recursive: true, force: true })));
});
const edit = async (dir: string, file: string, change: (json: Record<string, unknown>) => Record<string, unknown>) =>
  fs.writeFile(path.join(dir, file), JSON.stringify(change(JSON.parse(await fs.readFile(path.join(dir, file), 'utf8')))));

/** The problems inspection reports for the folder, or [] when it accepts it. */
async function problems(dir: string): Promise<string[]> {
  try {
    await inspectStableDiffusionXLFolder(dir);
    return [];
  } catch (err) {
    if (!(err instanceof StableDiffusionXLFolderError)) throw err;
    expect(err.code).toBe('BAD_USER_INPUT');
    for (const p of err.problems) expect(err.message).toContain(p);
    return err.problems;
  }
}

describe('recognising an SDXL folder', () => {
  it("reads Optimum's SDXL layout: graphs, both text encoders and tokenizers, scheduler, VAE and UNet settings, defaults and files", async () => {
    const dir = await fixture();
    const folder = await inspectStableDiffusionXLFolder(dir);
    expect(folder.graphs).toEqual({ unet: 'unet/model.onnx', vaeDecoder: 'vae_decoder/model.onnx' });
    expect(folder.textEncoders?.graphs).toEqual(['text_encoder/model.onnx', 'text_encoder_2/model.onnx']);
    expect(folder.textEncoders?.tokenizers.map((t) => t.vocab)).toEqual([path.join(dir, 'tokenizer/vocab.json'), path.join(dir, 'tokenizer_2/vocab.json')]);
    expect(folder.schedulerConfig._class_name).toBe('EulerDiscreteScheduler');
    expect(resolveSchedulerConfig(folder.schedulerConfig, 'euler')).toMatchObject({ timestepSpacing: 'leading', stepsOffset: 1 });
    expect(folder.forceZerosForEmptyPrompt).toBe(true);
    expect(folder.vae).toEqual({ scalingFactor: 0.13025, forceUpcast: true });
    expect(folder.unet).toEqual({ timeCondProjDim: null, crossAttentionDim: 16, pooledDim: 6 });
    expect(folder.sizeMultiple).toBe(16);
    expect(folder.turbo).toBe(false);
    expect(folder.defaults).toEqual({ steps: 30, guidanceScale: 5, width: 64, height: 64, scheduler: 'euler' });
    expect(folder.files).toEqual(buildSdxlFixture().map((f) => f.path).sort());
    expect(await isStableDiffusionXLFolder(dir)).toBe(true);
  });

  it('gives SDXL-Turbo one step without guidance at 512², with Euler on its trailing timesteps', async () => {
    const dir = await fixture({}, async (d) => {
      await edit(d, 'scheduler/scheduler_config.json', (c) => ({ ...c, _class_name: 'EulerAncestralDiscreteScheduler', timestep_spacing: 'trailing' }));
      await edit(d, 'unet/config.json', (c) => ({ ...c, sample_size: 64 }));
    });
    const folder = await inspectStableDiffusionXLFolder(dir);
    expect(folder.turbo).toBe(true);
    expect(folder.defaults).toEqual({ steps: 1, guidanceScale: 0, width: 512, height: 512, scheduler: 'euler' });
    expect(resolveSchedulerConfig(folder.schedulerConfig, 'euler').timestepSpacing).toBe('trailing');
    const named = await fixture({ index: { _name_or_path: 'stabilityai/sdxl-turbo' } });
    expect((await inspectStableDiffusionXLFolder(named)).defaults).toMatchObject({ steps: 1, guidanceScale: 0 });
  });

  it('reads a folder that ships without text encoders, whose prompts come as embeddings, and its force_zeros_for_empty_prompt', async () => {
    const folder = await inspectStableDiffusionXLFolder(await fixture({ withoutTextEncoders: true, forceZeros: false }));
    expect(folder.textEncoders).toBeNull();
    expect(folder.forceZerosForEmptyPrompt).toBe(false);
    expect(folder.files.some((f) => f.startsWith('text_encoder'))).toBe(false);
  });

  it.skipIf(!hasSdxlReference)('reads the shared sdxl-tiny fixture', async () => {
    const folder = await inspectStableDiffusionXLFolder(SDXL_TINY);
    expect(folder.textEncoders).toBeNull();
    expect(folder.vae).toEqual({ scalingFactor: 0.13025, forceUpcast: true });
    expect(folder.unet).toMatchObject({ crossAttentionDim: 64, pooledDim: 32 });
    expect(folder.defaults).toEqual({ steps: 30, guidanceScale: 5, width: 256, height: 256, scheduler: 'euler' });
  });

  it('lists every problem of a broken folder, naming each missing file', async () => {
    const dir = await fixture({}, async (d) => {
      for (const f of ['unet/model.onnx', 'text_encoder_2/model.onnx', 'tokenizer_2/merges.txt', 'scheduler/scheduler_config.json']) await fs.rm(path.join(d, f));
      await fs.writeFile(path.join(d, 'vae_decoder/config.json'), '{ not json');
    });
    expect(await problems(dir)).toEqual([
      'missing unet/model.onnx',
      'missing text_encoder_2/model.onnx',
      'missing tokenizer_2/merges.txt (or tokenizer_2/tokenizer.json)',
      'missing scheduler/scheduler_config.json',
      'vae_decoder/config.json is not a JSON object',
    ]);
    await expect(loadStableDiffusionXLPipeline(dir, { executionProviders: ['cpu'] })).rejects.toThrow(/^not a usable Stable Diffusion XL ONNX folder: missing unet\/model\.onnx; /);
  });

  it('refuses what is not a text-to-image SDXL model, and a half-declared set of text encoders', async () => {
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-sdxl-empty-'));
    dirs.push(empty);
    expect(await problems(empty)).toContain('missing model_index.json (an Optimum SDXL export names StableDiffusionXLPipeline there)');
    expect(await isStableDiffusionXLFolder(empty)).toBe(false);
    const refiner = await fixture({ index: { _class_name: 'StableDiffusionXLImg2ImgPipeline' } });
    expect((await problems(refiner))[0]).toMatch(/names StableDiffusionXLImg2ImgPipeline: Kiln runs the text-to-image StableDiffusionXLPipeline/);
    const half = await fixture({ index: { text_encoder: [null, null], tokenizer: [null, null] } });
    expect(await problems(half)).toEqual([
      'model_index.json leaves out text_encoder, tokenizer but not text_encoder_2, tokenizer_2: Kiln needs both text encoders and both tokenizers, or none (prompts then come as embeddings)',
    ]);
    const playground = await fixture({}, (d) => edit(d, 'vae_decoder/config.json', (c) => ({ ...c, latents_mean: [0, 0, 0, 0], latents_std: [1, 1, 1, 1] })));
    expect(await problems(playground)).toEqual([
      "vae_decoder/config.json: latents_mean is set, and Kiln's SDXL pipeline decodes with scaling_factor alone",
      "vae_decoder/config.json: latents_std is set, and Kiln's SDXL pipeline decodes with scaling_factor alone",
    ]);
    const sd = await fixture({}, (d) => edit(d, 'unet/config.json', (c) => ({ ...c, addition_embed_type: null })));
    expect(await problems(sd)).toEqual(['unet/config.json: addition_embed_type is null, not "text_time": not an SDXL UNet']);
  });

  it("refuses at load text encoders exported without every layer's hidden states", async () => {
    const dir = await fixture({}, async (d) => {
      const sd = await writeSdFixture(path.join(d, 'sd'), { layout: 'optimum' });
      await fs.copyFile(path.join(sd, 'text_encoder/model.onnx'), path.join(d, 'text_encoder_2/model.onnx'));
    });
    await expect(loadStableDiffusionXLPipeline(dir, { executionProviders: ['cpu'] })).rejects.toThrow(
      'text_encoder_2/model.onnx gives no penultimate hidden states (outputs hidden_states.0 … hidden_states.N, as Optimum exports SDXL\'s text encoders with output_hidden_states); it has last_hidden_state, pooler_output; text_encoder_2/model.onnx has no text_embeds output',
    );
  });

  it('is refused by the SD 1.x/2.x pipeline with a pointer to this one', async () => {
    await expect(inspectStableDiffusionFolder(await fixture())).rejects.toThrow(/the stable-diffusion-xl-onnx pipeline runs/);
  });
});
