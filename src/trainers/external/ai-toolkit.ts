import fs from 'node:fs/promises';
import path from 'node:path';
import { readSafetensorsHeader } from '../../models/safetensors.js';
import type { LossPoint, TrainerRequirements, TrainingCheckpoint } from '../trainer.js';
import type { AdapterExpectations } from './adapter-check.js';
import { fileSafeName, layOutDataset } from './dataset-layout.js';
import { type ExternalTool, externalTrainer, type ExternalTrainerOptions, type ToolRun, wholeSafetensors } from './external-trainer.js';
import { parseTqdmLine, postfixNumber } from './tqdm-line.js';
import { toYaml } from './yaml-writer.js';

/**
 * ostris/ai-toolkit: `<command> <work>/config.yaml` (the command is e.g. `python run.py`).
 *
 * What Kiln relies on, as ai-toolkit's source has it: an `extension` job with one `sd_trainer`
 * process saves under `<training_folder>/<name>/`: `<name>_<step, 9 digits>.safetensors` every
 * `save.save_every` steps, `<name>.safetensors` when training ends, samples as
 * `samples/<ms>__<step, 9 digits>_<i>.jpg`, and with `logging.use_ui_logger` the loss of every
 * `log_every`-th step in `loss_log.db` (SQLite: `steps`, `metrics(step, key, value_real)`,
 * key `loss/loss`, step counted from 0). Its progress bar is named after the job and shows
 * `lr: 1.0e-04 loss: 4.123e-01`, set before the bar moves. Started again in the same folder it
 * resumes by itself from the newest saved step and its `optimizer.pt` (and trains that step
 * once more: a save named N holds N + 1 updates, and it restarts at N). Stable Diffusion LoRAs
 * are saved in kohya's layout with diffusers module names (`lora_unet_down_blocks_0_…`,
 * `.lora_down.weight`, `.lora_up.weight`, `.alpha`), with `training_info` ({step, epoch}) and
 * `software` in the metadata. On SIGINT it prints "Job stopped" and exits 0.
 */
export function aiToolkitTrainer(options: ExternalTrainerOptions) {
  return externalTrainer(aiToolkit, options);
}

/** What a host needs to run it, whether or not this one has it. */
export const AI_TOOLKIT_REQUIREMENTS: TrainerRequirements = { pipelines: ['stable-diffusion-onnx'], device: 'cuda' };

const LORA_KEY = /^lora_unet_[A-Za-z0-9_]+\.(lora_down\.weight|lora_up\.weight|alpha)$/;

const aiToolkit: ExternalTool = {
  name: 'ai-toolkit',
  requirements: AI_TOOLKIT_REQUIREMENTS,
  async prepare(spec, dataset, captions, samplePrompts, base): Promise<ToolRun> {
    const name = fileSafeName(spec.name, 'lora');
    const datasetDir = path.join(spec.workDir, 'dataset');
    const trainingFolder = path.join(spec.workDir, 'output');
    const saveRoot = path.join(trainingFolder, name);
    await layOutDataset(dataset, captions, datasetDir);
    const config = {
      job: 'extension',
      config: {
        name,
        process: [
          {
            type: 'sd_trainer',
            training_folder: trainingFolder,
            device: 'cuda:0',
            trigger_word: spec.triggerWord,
            training_seed: spec.seed,
            network: { type: 'lora', linear: spec.rank, linear_alpha: spec.alpha },
            save: {
              dtype: 'float16',
              save_every: spec.checkpointEvery,
              max_step_saves_to_keep: spec.checkpointEvery ? Math.ceil(spec.steps / spec.checkpointEvery) : 1,
            },
            logging: { log_every: 1, use_ui_logger: true },
            datasets: [{ folder_path: datasetDir, caption_ext: 'txt', caption_dropout_rate: 0, shuffle_tokens: false, cache_latents_to_disk: true, resolution: [spec.resolution] }],
            train: {
              batch_size: spec.batchSize,
              steps: spec.steps,
              lr: spec.learningRate,
              optimizer: 'adamw',
              lr_scheduler: 'constant',
              train_unet: true,
              train_text_encoder: false,
              gradient_checkpointing: true,
              noise_scheduler: 'ddpm',
              dtype: 'bf16',
              skip_first_sample: true,
              disable_sampling: spec.sampleEvery === 0,
            },
            model: { name_or_path: base.weights, arch: base.architecture, is_v_pred: base.vPrediction },
            sample: {
              sampler: 'ddpm',
              sample_every: spec.sampleEvery,
              width: spec.resolution,
              height: spec.resolution,
              prompts: samplePrompts,
              neg: '',
              seed: spec.seed,
              walk_seed: false,
              guidance_scale: 7,
              sample_steps: 20,
            },
          },
        ],
      },
      meta: { name: '[name]', version: '1.0' },
    };
    const configFile = path.join(spec.workDir, 'config.yaml');
    await fs.writeFile(configFile, toYaml(config));

    const saves = () => savedSteps(saveRoot, name);
    const latest = (await saves()).at(-1);
    const expectations: AdapterExpectations = {
      key: LORA_KEY,
      layout: "ai-toolkit's Stable Diffusion LoRA layout (lora_unet_… .lora_down.weight, .lora_up.weight, .alpha)",
      rank: spec.rank,
      alpha: spec.alpha,
      metadata: [
        (m) => (jsonField(m.software, 'name') === 'ai-toolkit' ? null : 'its metadata does not name ai-toolkit as its software'),
        (m) => (jsonField(m.training_info, 'step') === spec.steps ? null : `its metadata says it trained ${jsonField(m.training_info, 'step') ?? 'an unknown number of'} steps, not ${spec.steps}`),
        (m) => (m.ss_output_name === name ? null : `its metadata names it ${JSON.stringify(m.ss_output_name)}, not ${JSON.stringify(name)}`),
      ],
    };
    return {
      args: [configFile],
      output: path.join(saveRoot, `${name}.safetensors`),
      resumedFromStep: latest ? await trainingInfoStep(latest.path) : 0,
      progress(line) {
        const bar = parseTqdmLine(line);
        if (!bar || bar.desc !== name) return null;
        return { step: bar.n, totalSteps: bar.total, loss: postfixNumber(bar.postfix, 'loss'), learningRate: postfixNumber(bar.postfix, 'lr'), remainingSeconds: bar.remainingSeconds };
      },
      lossAfterStep: false,
      checkpoints: saves,
      samples: () => sampleSets(path.join(saveRoot, 'samples'), samplePrompts.length),
      expectations,
      recordedLosses: () => lossLog(path.join(saveRoot, 'loss_log.db')),
    };
  },
};

/** Its step saves that are whole (their safetensors header fits the file), oldest first. */
async function savedSteps(saveRoot: string, name: string): Promise<TrainingCheckpoint[]> {
  const pattern = new RegExp(`^${name}_(\\d{9})\\.safetensors$`);
  const found: TrainingCheckpoint[] = [];
  for (const file of (await fs.readdir(saveRoot).catch(() => [] as string[])).sort()) {
    const m = pattern.exec(file);
    if (!m) continue;
    const full = path.join(saveRoot, file);
    if (await wholeSafetensors(full)) found.push({ step: Number(m[1]), path: full });
  }
  return found;
}

async function trainingInfoStep(file: string): Promise<number> {
  const { metadata } = await readSafetensorsHeader(file);
  const step = jsonField(metadata.training_info, 'step');
  return typeof step === 'number' ? step : 0;
}

/** Per step, the newest complete set of `<ms>__<step>_<i>.<ext>` files. */
async function sampleSets(dir: string, prompts: number): Promise<{ step: number; files: string[] }[]> {
  const sets = new Map<string, { time: number; step: number; files: Map<number, string> }>();
  for (const file of await fs.readdir(dir).catch(() => [] as string[])) {
    const m = /^(\d+)__(\d{9})_(\d+)\.(jpg|jpeg|png|webp)$/.exec(file);
    if (!m) continue;
    const key = `${m[1]}/${m[2]}`;
    const set = sets.get(key) ?? { time: Number(m[1]), step: Number(m[2]), files: new Map() };
    set.files.set(Number(m[3]), path.join(dir, file));
    sets.set(key, set);
  }
  const newest = new Map<number, { time: number; files: string[] }>();
  for (const s of sets.values()) {
    const files = Array.from({ length: prompts }, (_, i) => s.files.get(i));
    if (files.some((f) => !f) || (newest.get(s.step)?.time ?? -1) > s.time) continue;
    newest.set(s.step, { time: s.time, files: files as string[] });
  }
  return [...newest].sort(([a], [b]) => a - b).map(([step, s]) => ({ step, files: s.files }));
}

/** `loss/loss` of every step logged in ai-toolkit's loss_log.db, steps counted from 1. */
async function lossLog(file: string): Promise<LossPoint[]> {
  if (!(await fs.stat(file).catch(() => null))) return [];
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(file);
  try {
    const rows = db.prepare(`SELECT step, value_real FROM metrics WHERE key = 'loss/loss' AND value_real IS NOT NULL ORDER BY step`).all();
    return rows.map((r) => ({ step: Number(r.step) + 1, loss: Number(r.value_real) }));
  } catch {
    // Written by a version with another schema: the progress lines' values stand.
    return [];
  } finally {
    db.close();
  }
}

function jsonField(text: string | undefined, field: string): unknown {
  try {
    const value: unknown = JSON.parse(text ?? 'null');
    return value && typeof value === 'object' ? (value as Record<string, unknown>)[field] : undefined;
  } catch {
    return undefined;
  }
}
