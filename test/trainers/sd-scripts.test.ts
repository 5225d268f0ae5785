import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLoraAdapter } from '../../src/models/lora-adapter.js';
import { readDatasetFolder } from '../../src/trainers/dataset-folder.js';
import { sdScriptsTrainer } from '../../src/trainers/external/sd-scripts.js';
import type { TrainingSpec } from '../../src/trainers/trainer.js';
import { alive, externalSpec, externalTrainingFixtures, readWithPython, recordingHooks, standin } from '../support/external-trainers.js';
import { lossAt } from '../support/trainer-standin-common.mjs';

let root: string;
let fixtures: Awaited<ReturnType<typeof externalTrainingFixtures>>;
let runs = 0;
const spec = (overrides: Partial<TrainingSpec> = {}) => externalSpec(fixtures, path.join(root, `work-${++runs}`), overrides);
const trainer = (...options: string[]) => sdScriptsTrainer({ command: standin('sd-scripts', ...options), pollMs: 25, graceMs: 2000 });
/** sd-scripts' `avr_loss` after the first n steps of a run that started at `from`, as tqdm prints it (3 significant digits). */
const averageLoss = (n: number, from = 0) => {
  const losses = Array.from({ length: n - from }, (_, i) => lossAt(from + i));
  return Number((losses.reduce((a, b) => a + b, 0) / losses.length).toPrecision(3));
};

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-sd-scripts-'));
  fixtures = await externalTrainingFixtures(root);
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('the sd-scripts trainer, against a stand-in with sd-scripts’ output formats', () => {
  it('lays out kohya’s repeat folder and writes the dataset TOML and sample prompts from the spec', async () => {
    const s = spec();
    const result = await trainer().train(s, recordingHooks());
    // 10 steps of batches of 2 over 3 images: 7 repeats make one epoch cover them all.
    const folder = path.join(s.workDir, 'dataset', '7_kilnstyle');
    expect((await fs.readdir(folder)).sort()).toEqual(['001.png', '001.txt', '002.png', '002.txt', '003.png', '003.txt']);
    expect(await fs.readFile(path.join(folder, '002.txt'), 'utf8')).toBe('kilnstyle, a blue sky');
    // The stand-in counts tags in the captions it found, as sd-scripts does: they were read as .txt.
    expect(JSON.parse(result.metadata.ss_tag_frequency!)).toEqual({ '7_kilnstyle': { kilnstyle: 3, 'a red square': 1, 'a blue sky': 1, 'green fading to black': 1 } });
    expect(JSON.parse(result.metadata.ss_dataset_dirs!)).toEqual({ '7_kilnstyle': { n_repeats: 7, img_count: 3 } });
    expect(result.metadata).toMatchObject({ ss_num_epochs: '1', ss_learning_rate: '0.0001', ss_seed: '5', ss_resolution: '(64, 64)', ss_sd_model_name: 'base' });
    expect(await fs.readFile(path.join(s.workDir, 'sample-prompts.txt'), 'utf8')).toBe(
      'kilnstyle --w 64 --h 64 --d 5 --s 20 --l 7\nkilnstyle, a red square --w 64 --h 64 --d 5 --s 20 --l 7\n',
    );
    const toml = await readWithPython('toml', path.join(s.workDir, 'dataset.toml'));
    if (toml) {
      expect(toml).toEqual({
        general: { caption_extension: '.txt', shuffle_caption: false, enable_bucket: false },
        datasets: [{ resolution: 64, batch_size: 2, subsets: [{ image_dir: folder, num_repeats: 7, class_tokens: 'kilnstyle' }] }],
      });
    }
  });

  it('reports its progress bar with the loss of each step, state checkpoints and samples, and returns the checked adapter', async () => {
    const s = spec();
    const hooks = recordingHooks();
    const result = await trainer().train(s, hooks);
    const { steps, checkpoints, samples } = hooks.recorded;
    expect(steps.map((p) => [p.step, p.totalSteps, p.learningRate])).toEqual(Array.from({ length: 10 }, (_, i) => [i + 1, 10, 1e-4]));
    // sd-scripts moves the bar before it sets avr_loss: each step reports the value set after it moved.
    expect(steps.map((p) => p.loss)).toEqual(Array.from({ length: 10 }, (_, i) => averageLoss(i + 1)));
    expect(result.lossCurve).toEqual(steps.map((p) => ({ step: p.step, loss: p.loss })));
    expect(checkpoints).toEqual([4, 8].map((step) => ({ step, path: path.join(s.workDir, 'output', `my_lora-step0000000${step}-state`) })));
    expect(samples.map((x) => [x.step, x.prompts, x.images.map((im) => [im.width, im.height])])).toEqual(
      [5, 10].map((step) => [step, ['kilnstyle', 'kilnstyle, a red square'], [[64, 64], [64, 64]]]),
    );
    const adapter = await readLoraAdapter(result.adapterPath);
    expect(adapter.modules).toHaveLength(192);
    expect(new Set(adapter.modules.map((m) => `${m.component} ${m.rank} ${m.alpha}`))).toEqual(new Set(['unet 4 2']));
    expect(result.metadata).toMatchObject({
      ss_network_module: 'networks.lora',
      ss_network_dim: '4',
      ss_network_alpha: '2.0',
      ss_steps: '10',
      ss_output_name: 'my_lora',
      'kiln.trainer': 'sd-scripts',
      'kiln.dataset_sha256': (await readDatasetFolder(fixtures.datasetDir)).sha256,
    });
  });

  it('fails a crash mid-way as retryable, and the retry resumes from the last state with --resume and --skip_until_initial_step', async () => {
    const s = spec({ checkpointEvery: 3, sampleEvery: 0 });
    await expect(trainer('--standin-crash-at=7').train(s, recordingHooks())).rejects.toMatchObject({
      code: 'TRAINER_FAILED',
      retryable: true,
      message: expect.stringMatching(/exited with code 1 .*CUDA out of memory/),
    });
    const hooks = recordingHooks();
    const result = await trainer().train(s, hooks);
    expect(result.resumedFromStep).toBe(6);
    expect(hooks.recorded.steps.map((p) => [p.step, p.totalSteps])).toEqual([7, 8, 9, 10].map((step) => [step, 10]));
    expect(hooks.recorded.checkpoints.map((c) => c.step)).toEqual([3, 6, 9]);
    // Steps 1–6 as the first run printed them; from 7 on the resumed run's own running average
    // (its step 7 replaces the first run's, which the crash left past the last state).
    expect(result.lossCurve).toEqual(Array.from({ length: 10 }, (_, i) => ({ step: i + 1, loss: i < 6 ? averageLoss(i + 1) : averageLoss(i + 1, 6) })));
    expect(result.metadata.ss_steps).toBe('10');
  });

  it('stops on the signal with SIGINT to its process group, and the training rejects with the reason', async () => {
    const s = spec({ steps: 200, checkpointEvery: 0, sampleEvery: 0 });
    const controller = new AbortController();
    const hooks = recordingHooks({ signal: controller.signal, onStep: (p) => void (p.step === 3 && controller.abort(new Error('cancelled'))) });
    await expect(trainer('--standin-child', '--standin-step-ms=30').train(s, hooks)).rejects.toThrow('cancelled');
    expect(alive(Number(await fs.readFile(path.join(s.workDir, 'standin-child.pid'), 'utf8')))).toBe(false);
    await expect(fs.stat(path.join(s.workDir, 'adapter.safetensors'))).rejects.toThrow();
  });

  it('refuses an adapter that also trained the text encoder', async () => {
    await expect(trainer('--standin-keys=te').train(spec({ sampleEvery: 0 }), recordingHooks())).rejects.toMatchObject({
      code: 'TRAINER_OUTPUT_INVALID',
      message: expect.stringContaining('"lora_te_text_model_encoder_layers_0_self_attn_'),
    });
  });

  it('refuses SDXL bases before starting anything, and bases whose family it cannot tell', async () => {
    const sdxl = await externalTrainingFixtures(path.join(root, 'sdxl'), 2048);
    const s = externalSpec(sdxl, path.join(root, 'sdxl-work'));
    await expect(trainer().train(s, recordingHooks())).rejects.toMatchObject({ code: 'TRAINING_INVALID', message: expect.stringContaining('SDXL') });
    await expect(fs.stat(s.workDir)).rejects.toThrow();
    const unknown = spec({ baseModel: { dir: path.join(root, 'nowhere'), pipeline: 'stable-diffusion-onnx' } });
    await expect(trainer().train(unknown, recordingHooks())).rejects.toMatchObject({ code: 'TRAINING_INVALID' });
    const told = spec({ baseModel: { dir: path.join(root, 'nowhere'), pipeline: 'stable-diffusion-onnx', trainingWeights: 'runwayml/stable-diffusion-v1-5', architecture: 'sd1' }, sampleEvery: 0 });
    expect((await trainer().train(told, recordingHooks())).metadata.ss_sd_model_name).toBe('stable-diffusion-v1-5');
  });
});
