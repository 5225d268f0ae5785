import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLoraAdapter } from '../../src/models/lora-adapter.js';
import { readDatasetFolder } from '../../src/trainers/dataset-folder.js';
import { aiToolkitTrainer } from '../../src/trainers/external/ai-toolkit.js';
import type { TrainingSpec } from '../../src/trainers/trainer.js';
import { alive, externalSpec, externalTrainingFixtures, readWithPython, recordingHooks, standin } from '../support/external-trainers.js';
// The stand-in's loss per (0-based) step, which its loss_log.db holds exactly.
import { lossAt } from '../support/trainer-standin-common.mjs';

let root: string;
let fixtures: Awaited<ReturnType<typeof externalTrainingFixtures>>;
let runs = 0;
const spec = (overrides: Partial<TrainingSpec> = {}) => externalSpec(fixtures, path.join(root, `work-${++runs}`), overrides);
const trainer = (...options: string[]) => aiToolkitTrainer({ command: standin('ai-toolkit', ...options), pollMs: 25, graceMs: 2000 });

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-ai-toolkit-'));
  fixtures = await externalTrainingFixtures(root);
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('the ai-toolkit trainer, against a stand-in with ai-toolkit’s output formats', () => {
  it('writes ai-toolkit’s job config and dataset folder from the spec', async () => {
    const s = spec();
    await trainer().train(s, recordingHooks());
    const dataset = path.join(s.workDir, 'dataset');
    expect((await fs.readdir(dataset)).sort()).toEqual(['001.png', '001.txt', '002.png', '002.txt', '003.png', '003.txt']);
    expect(await fs.readFile(path.join(dataset, '001.txt'), 'utf8')).toBe('kilnstyle, a red square');
    const config = (await readWithPython('yaml', path.join(s.workDir, 'config.yaml'))) as { job: string; config: { name: string; process: Record<string, any>[] } } | null;
    if (!config) return;
    const p = config.config.process[0]!;
    expect(config.job).toBe('extension');
    expect(config.config.name).toBe('my_lora');
    expect(p).toMatchObject({
      type: 'sd_trainer',
      training_folder: path.join(s.workDir, 'output'),
      trigger_word: 'kilnstyle',
      training_seed: 5,
      network: { type: 'lora', linear: 4, linear_alpha: 2 },
      save: { save_every: 4 },
      logging: { log_every: 1, use_ui_logger: true },
      datasets: [{ folder_path: dataset, caption_ext: 'txt', resolution: [64] }],
      train: { batch_size: 2, steps: 10, optimizer: 'adamw', lr_scheduler: 'constant', train_text_encoder: false },
      model: { name_or_path: fixtures.baseDir, arch: 'sd1', is_v_pred: false },
      sample: { sample_every: 5, prompts: ['kilnstyle', 'kilnstyle, a red square'], seed: 5 },
    });
    // PyYAML reads "1e-4" as a string; Kiln's number must arrive as a float.
    expect(p.train.lr).toBe(1e-4);
  });

  it('reports its progress bar, checkpoints and samples, takes the loss curve from loss_log.db and returns the checked adapter', async () => {
    const s = spec();
    const hooks = recordingHooks();
    const result = await trainer().train(s, hooks);
    const { steps, checkpoints, samples } = hooks.recorded;
    expect(steps.map((p) => [p.step, p.totalSteps, p.learningRate])).toEqual(Array.from({ length: 10 }, (_, i) => [i + 1, 10, 1e-4]));
    // The bar shows 4 significant digits of each step's loss.
    for (const p of steps) expect(p.loss).toBeCloseTo(lossAt(p.step - 1), 3);
    expect(steps.every((p) => p.etaSeconds !== null && p.etaSeconds >= 0)).toBe(true);
    expect(checkpoints).toEqual([4, 8].map((step) => ({ step, path: path.join(s.workDir, 'output', 'my_lora', `my_lora_00000000${step}.safetensors`) })));
    expect(samples.map((x) => [x.step, x.prompts, x.images.map((im) => [im.width, im.height, im.data.length])])).toEqual(
      [5, 10].map((step) => [step, ['kilnstyle', 'kilnstyle, a red square'], [[64, 64, 64 * 64 * 3], [64, 64, 64 * 64 * 3]]]),
    );

    // ai-toolkit logs no loss for the step a run starts at; the other steps come exactly from its database.
    expect(result.lossCurve.map((p) => p.step)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(result.lossCurve.slice(1).map((p) => p.loss)).toEqual(Array.from({ length: 9 }, (_, i) => lossAt(i + 1)));
    expect(result.lossCurve[0]!.loss).toBeCloseTo(lossAt(0), 3);

    expect(result.adapterPath).toBe(path.join(s.workDir, 'adapter.safetensors'));
    expect(result.resumedFromStep).toBe(0);
    const adapter = await readLoraAdapter(result.adapterPath);
    expect(adapter.modules).toHaveLength(192);
    expect(new Set(adapter.modules.map((m) => `${m.component} ${m.naming} ${m.rank} ${m.alpha}`))).toEqual(new Set(['unet underscored 4 2']));
    expect(adapter.modules.map((m) => m.path)).toContain('down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q');
    expect(adapter.metadata).toEqual(result.metadata);
    expect(JSON.parse(result.metadata.training_info!)).toEqual({ step: 10, epoch: 0 });
    expect(result.metadata).toMatchObject({
      ss_output_name: 'my_lora',
      ss_base_model_version: 'sd_1.5',
      'kiln.trainer': 'ai-toolkit',
      'kiln.pipeline': 'stable-diffusion-onnx',
      'kiln.trigger_word': 'kilnstyle',
      'kiln.dataset_sha256': (await readDatasetFolder(fixtures.datasetDir)).sha256,
      'kiln.rank': '4',
      'kiln.alpha': '2',
    });
  });

  it('fails a crash mid-way as retryable with the tool’s last words, and the retry continues from its last save', async () => {
    const s = spec({ checkpointEvery: 3, sampleEvery: 0 });
    const crashed = trainer('--standin-crash-at=6').train(s, recordingHooks());
    await expect(crashed).rejects.toMatchObject({ code: 'TRAINER_FAILED', retryable: true, message: expect.stringMatching(/exited with code 1 .*CUDA error: an illegal memory access/) });
    await expect(fs.stat(path.join(s.workDir, 'adapter.safetensors'))).rejects.toThrow();

    const hooks = recordingHooks();
    const result = await trainer().train(s, hooks);
    expect(result.resumedFromStep).toBe(3);
    expect(hooks.recorded.steps.map((p) => p.step)).toEqual([4, 5, 6, 7, 8, 9, 10]);
    expect(hooks.recorded.checkpoints.map((c) => c.step)).toEqual([3, 6, 9]);
    expect(result.lossCurve.map((p) => p.step)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(result.lossCurve.slice(1).map((p) => p.loss)).toEqual(Array.from({ length: 9 }, (_, i) => lossAt(i + 1)));
    expect(JSON.parse(result.metadata.training_info!).step).toBe(10);
  });

  it('stops on the signal: SIGINT to its whole process group, and the training rejects though ai-toolkit exits 0', async () => {
    const s = spec({ steps: 200, checkpointEvery: 0, sampleEvery: 0 });
    const controller = new AbortController();
    let leader = 0;
    const hooks = recordingHooks({
      signal: controller.signal,
      onStep: async (p) => {
        if (p.step !== 3) return;
        leader = Number(await fs.readFile(path.join(s.workDir, 'trainer.pgid'), 'utf8'));
        controller.abort(new Error('cancelled by the test'));
      },
    });
    const started = performance.now();
    await expect(trainer('--standin-child', '--standin-step-ms=30').train(s, hooks)).rejects.toThrow('cancelled by the test');
    expect(performance.now() - started).toBeLessThan(10_000);
    const child = Number(await fs.readFile(path.join(s.workDir, 'standin-child.pid'), 'utf8'));
    expect([leader > 0, alive(leader), alive(child)]).toEqual([true, false, false]);
    await expect(fs.stat(path.join(s.workDir, 'adapter.safetensors'))).rejects.toThrow();
    await expect(fs.stat(path.join(s.workDir, 'trainer.pgid'))).rejects.toThrow();
  });

  it('SIGKILLs a tool that ignores SIGINT once the grace period is over', async () => {
    const s = spec({ steps: 500, checkpointEvery: 0, sampleEvery: 0 });
    const controller = new AbortController();
    const hooks = recordingHooks({ signal: controller.signal, onStep: (p) => void (p.step === 2 && controller.abort(new Error('stop'))) });
    const patient = aiToolkitTrainer({ command: standin('ai-toolkit', '--standin-ignore-sigint', '--standin-child'), pollMs: 25, graceMs: 300 });
    const started = performance.now();
    await expect(patient.train(s, hooks)).rejects.toThrow('stop');
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(5000);
    expect(alive(Number(await fs.readFile(path.join(s.workDir, 'standin-child.pid'), 'utf8')))).toBe(false);
  });

  it('refuses an adapter with keys outside ai-toolkit’s UNet layout', async () => {
    const s = spec({ sampleEvery: 0 });
    await expect(trainer('--standin-keys=te').train(s, recordingHooks())).rejects.toMatchObject({
      code: 'TRAINER_OUTPUT_INVALID',
      retryable: false,
      message: expect.stringContaining('"lora_te_text_model_encoder_layers_0_self_attn_'),
    });
    await expect(fs.stat(path.join(s.workDir, 'adapter.safetensors'))).rejects.toThrow();
  });

  it('refuses an adapter whose rank or alpha is not the one asked for', async () => {
    const s = spec({ sampleEvery: 0 });
    await trainer().train(s, recordingHooks());
    // The same work folder, finished already, now asked for another alpha.
    await expect(trainer().train({ ...s, alpha: 8 }, recordingHooks())).rejects.toMatchObject({ code: 'TRAINER_OUTPUT_INVALID', message: expect.stringContaining('alpha 2, not the 8') });
  });

  it('runs the tool again, from its last save, when the adapter it wrote was cut short', async () => {
    const s = spec({ sampleEvery: 0 });
    await trainer().train(s, recordingHooks());
    const output = path.join(s.workDir, 'output', 'my_lora', 'my_lora.safetensors');
    await fs.truncate(output, (await fs.stat(output)).size / 2);
    await fs.rm(path.join(s.workDir, 'adapter.safetensors'));
    const hooks = recordingHooks();
    const result = await trainer().train(s, hooks);
    expect(result.resumedFromStep).toBe(8);
    expect(hooks.recorded.steps.map((p) => p.step)).toEqual([9, 10]);
    expect((await readLoraAdapter(result.adapterPath)).modules).toHaveLength(192);
  });

  it('takes the outcome from what the tool wrote, not its exit code', async () => {
    const result = await trainer('--standin-exit-code=3').train(spec({ sampleEvery: 0 }), recordingHooks());
    expect((await readLoraAdapter(result.adapterPath)).modules).toHaveLength(192);
  });

  it('says when its command cannot be started', async () => {
    const missing = aiToolkitTrainer({ command: [path.join(root, 'no-such-python'), 'run.py'] });
    await expect(missing.train(spec(), recordingHooks())).rejects.toMatchObject({ code: 'TRAINER_UNAVAILABLE', retryable: false });
  });

  it('kills a run left behind in the work folder by a Kiln that died, before starting another', async () => {
    const s = spec({ sampleEvery: 0, checkpointEvery: 0 });
    await fs.mkdir(s.workDir, { recursive: true });
    const orphan = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
    const gone = new Promise((resolve) => orphan.once('exit', resolve));
    await fs.writeFile(path.join(s.workDir, 'trainer.pgid'), String(orphan.pid));
    await trainer().train(s, recordingHooks());
    await gone;
    expect(alive(orphan.pid!)).toBe(false);
  });
});
