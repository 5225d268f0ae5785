import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inspectStableDiffusionFolder, SD_TURBO_SCHEDULER, StableDiffusionFolderError } from '../../../src/pipelines/stable-diffusion/model-folder.js';
import { loadStableDiffusionPipeline } from '../../../src/pipelines/stable-diffusion/pipeline.js';
import { buildSdFixture, type SdFixtureOptions, writeSdFixture } from '../../support/sd-fixtures.js';

const dirs: string[] = [];
async function fixture(options: SdFixtureOptions, change?: (dir: string) => Promise<void>): Promise<string> {
  const dir = await writeSdFixture(await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-sd-folder-')), options);
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
    await inspectStableDiffusionFolder(dir);
    return [];
  } catch (err) {
    if (!(err instanceof StableDiffusionFolderError)) throw err;
    expect(err.code).toBe('BAD_USER_INPUT');
    expect(err.message).toContain(err.problems[0]);
    return err.problems;
  }
}

describe('recognising a Stable Diffusion folder', () => {
  it('reads an Optimum export: its graphs, tokenizer, scheduler, scaling factor, defaults and files', async () => {
    const dir = await fixture({ layout: 'optimum' });
    const folder = await inspectStableDiffusionFolder(dir);
    expect(folder.layout).toBe('optimum');
    expect(folder.graphs).toEqual({ textEncoder: 'text_encoder/model.onnx', unet: 'unet/model.onnx', vaeDecoder: 'vae_decoder/model.onnx' });
    expect(folder.tokenizer).toMatchObject({ tokenizerJson: null, vocab: path.join(dir, 'tokenizer/vocab.json'), merges: path.join(dir, 'tokenizer/merges.txt') });
    expect(folder.schedulerConfig._class_name).toBe('PNDMScheduler');
    expect(folder.vaeScalingFactor).toBe(0.18215);
    expect(folder.defaults).toEqual({ steps: 30, guidanceScale: 7.5, width: 64, height: 64, scheduler: 'pndm' });
    expect(folder.files).toEqual(buildSdFixture({ layout: 'optimum' }).map((f) => f.path).sort());
  });

  it("reads ONNX Runtime's SD-Turbo export, filling in SD-Turbo's scheduler and defaults", async () => {
    const folder = await inspectStableDiffusionFolder(await fixture({ layout: 'ort-turbo' }));
    expect(folder.layout).toBe('ort-turbo');
    expect(folder.schedulerConfig).toEqual(SD_TURBO_SCHEDULER);
    expect(folder.defaults).toEqual({ steps: 1, guidanceScale: 0, width: 512, height: 512, scheduler: 'euler' });
    expect(folder.files).not.toContain('model_index.json');
  });

  it("finds the WebNN build's model_layernorm.onnx graphs", async () => {
    const folder = await inspectStableDiffusionFolder(await fixture({ layout: 'ort-turbo', webnnNames: true }));
    expect(folder.graphs).toEqual({ textEncoder: 'text_encoder/model_layernorm.onnx', unet: 'unet/model_layernorm.onnx', vaeDecoder: 'vae_decoder/model.onnx' });
  });

  it('gives LCM models four steps and turbo models one step without guidance', async () => {
    const lcm = await fixture({ layout: 'optimum' }, async (dir) => {
      await fs.writeFile(path.join(dir, 'scheduler/scheduler_config.json'), JSON.stringify({ _class_name: 'LCMScheduler', beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 }));
      await fs.writeFile(path.join(dir, 'unet/config.json'), JSON.stringify({ sample_size: 64, time_cond_proj_dim: 256 }));
    });
    expect((await inspectStableDiffusionFolder(lcm)).defaults).toEqual({ steps: 4, guidanceScale: 8, width: 512, height: 512, scheduler: 'lcm' });
    const turbo = await fixture({ layout: 'optimum' }, async (dir) => {
      const index = JSON.parse(await fs.readFile(path.join(dir, 'model_index.json'), 'utf8'));
      await fs.writeFile(path.join(dir, 'model_index.json'), JSON.stringify({ ...index, _name_or_path: 'stabilityai/sd-turbo' }));
    });
    expect((await inspectStableDiffusionFolder(turbo)).defaults).toMatchObject({ steps: 1, guidanceScale: 0 });
  });
});

describe('refusing an incomplete or inconsistent folder', () => {
  it.each([
    ['text_encoder/model.onnx', 'missing text_encoder/model.onnx'],
    ['unet/model.onnx', 'missing unet/model.onnx'],
    ['vae_decoder/model.onnx', 'missing vae_decoder/model.onnx'],
    ['scheduler/scheduler_config.json', 'missing scheduler/scheduler_config.json'],
    ['tokenizer/merges.txt', 'missing tokenizer/merges.txt (or tokenizer/tokenizer.json)'],
    ['tokenizer/vocab.json', 'missing tokenizer/vocab.json (or tokenizer/tokenizer.json)'],
  ])('names a missing %s', async (file, problem) => {
    const dir = await fixture({ layout: 'optimum' }, (d) => fs.rm(path.join(d, file)));
    expect(await problems(dir)).toEqual([problem]);
  });

  it('names every missing part at once', async () => {
    const dir = await fixture({ layout: 'optimum' }, async (d) => {
      await fs.rm(path.join(d, 'unet'), { recursive: true });
      await fs.rm(path.join(d, 'tokenizer'), { recursive: true });
    });
    expect(await problems(dir)).toEqual(['missing unet/model.onnx', 'missing tokenizer/vocab.json and tokenizer/merges.txt (or tokenizer/tokenizer.json)']);
  });

  it('says the tokenizer must travel with a turbo export, since Kiln is offline', async () => {
    const dir = await fixture({ layout: 'ort-turbo' }, (d) => fs.rm(path.join(d, 'tokenizer'), { recursive: true }));
    const [problem] = await problems(dir);
    expect(problem).toMatch(/^missing tokenizer\/vocab\.json and tokenizer\/merges\.txt .*offline/);
  });

  it('refuses a folder that is neither layout', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-sd-folder-'));
    dirs.push(dir);
    expect((await problems(dir))[0]).toMatch(/found neither model_index\.json .* nor text_encoder\/, unet\/ and vae_decoder\//);
  });

  it('refuses Stable Diffusion XL', async () => {
    const dir = await fixture({ layout: 'optimum' }, (d) => fs.writeFile(path.join(d, 'model_index.json'), JSON.stringify({ _class_name: 'StableDiffusionXLPipeline' })));
    expect((await problems(dir))[0]).toMatch(/Stable Diffusion XL/);
  });

  it('names unreadable configs and scheduler settings Kiln cannot run', async () => {
    const dir = await fixture({ layout: 'optimum' }, async (d) => {
      await fs.writeFile(path.join(d, 'model_index.json'), '{ not json');
      await fs.writeFile(path.join(d, 'scheduler/scheduler_config.json'), JSON.stringify({ _class_name: 'DDIMScheduler', thresholding: true }));
      await fs.writeFile(path.join(d, 'vae_decoder/config.json'), JSON.stringify({ scaling_factor: 'big' }));
    });
    expect(await problems(dir)).toEqual([
      'model_index.json is not a JSON object',
      "scheduler/scheduler_config.json: scheduler setting thresholding=true is not supported by Kiln's ddim scheduler",
      'vae_decoder/config.json: scaling_factor must be a positive number',
    ]);
  });

  it('refuses at load a graph without the inputs the pipeline feeds', async () => {
    const dir = await fixture({ layout: 'optimum' }, (d) => fs.copyFile(path.join(d, 'vae_decoder/model.onnx'), path.join(d, 'unet/model.onnx')));
    await expect(loadStableDiffusionPipeline(dir, { executionProviders: ['cpu'] })).rejects.toThrow(
      /unet\/model\.onnx has no input sample \(it has latent_sample\); unet\/model\.onnx has no input timestep/,
    );
  });

  it('refuses at load a text encoder whose hidden states the UNet cannot take', async () => {
    const dir = await fixture({ layout: 'optimum', textEncoderWidth: 12 });
    await expect(loadStableDiffusionPipeline(dir, { executionProviders: ['cpu'] })).rejects.toThrow(
      'text_encoder/model.onnx makes hidden states 12 wide, but unet/model.onnx takes 8',
    );
  });
});
