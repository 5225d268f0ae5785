import fs from 'node:fs/promises';
import path from 'node:path';
import { JobFailure } from '../../errors.js';
import type { TrainerRequirements, TrainingCheckpoint } from '../trainer.js';
import { fileSafeName, layOutDataset } from './dataset-layout.js';
import { type ExternalTool, externalTrainer, type ExternalTrainerOptions, type ToolRun } from './external-trainer.js';
import { parseTqdmLine, postfixNumber } from './tqdm-line.js';

/**
 * kohya-ss/sd-scripts: `<command> --flag=value …`, the command running `train_network.py`
 * (e.g. `accelerate launch --num_cpu_threads_per_process 1 train_network.py`).
 *
 * What Kiln relies on, as sd-scripts' source has it: a DreamBooth-style dataset in a
 * `<repeats>_<trigger>` folder with `.txt` captions beside the images, described by a
 * `--dataset_config` TOML; `<output_name>-step<8 digits>.safetensors` and, with `--save_state`,
 * accelerate's state folder `<output_name>-step<8 digits>-state` (its `train_state.json` holds
 * the step; `random_states_0.pkl` is written last) every `--save_every_n_steps`;
 * `<output_name>.safetensors` at the end; samples as
 * `sample/<output_name>_<step, 6 digits>_<prompt, 2 digits>_<time>_<seed>.png`; and a tqdm bar
 * named `steps` whose postfix `avr_loss=…` (its running average) is set after the bar moves.
 * `--resume <state> --skip_until_initial_step` continues from a state: the bar then counts from
 * 0 to steps − N, so Kiln adds N. Repeats are chosen so that one epoch covers every step, which
 * keeps that skip exact (sd-scripts skips whole epochs by another rule). LoRAs are kohya's
 * layout (`lora_unet_<diffusers module>.lora_down.weight`, `.lora_up.weight`, `.alpha`) with the
 * `ss_*` metadata. SDXL is refused: sdxl_train_network.py names modules as the original SDXL
 * code does, which no diffusers export Kiln runs can match.
 */
export function sdScriptsTrainer(options: ExternalTrainerOptions) {
  return externalTrainer(sdScripts, options);
}

/** What a host needs to run it, whether or not this one has it. */
export const SD_SCRIPTS_REQUIREMENTS: TrainerRequirements = { pipelines: ['stable-diffusion-onnx'], device: 'cuda' };

const LORA_KEY = /^lora_unet_[A-Za-z0-9_]+\.(lora_down\.weight|lora_up\.weight|alpha)$/;

const sdScripts: ExternalTool = {
  name: 'sd-scripts',
  requirements: SD_SCRIPTS_REQUIREMENTS,
  check(base) {
    if (base.architecture === 'sdxl') {
      throw new JobFailure('TRAINING_INVALID', 'the sd-scripts trainer trains SD 1.x and 2.x LoRAs; its SDXL LoRAs use module names no SDXL model Kiln runs has (use ai-toolkit)', false);
    }
  },
  async prepare(spec, dataset, captions, samplePrompts, base): Promise<ToolRun> {
    const name = fileSafeName(spec.name, 'lora');
    const repeats = Math.max(1, Math.ceil((spec.steps * spec.batchSize) / dataset.items.length));
    const imageDir = path.join(spec.workDir, 'dataset', `${repeats}_${fileSafeName(spec.triggerWord, 'trigger')}`);
    await layOutDataset(dataset, captions, imageDir);
    const q = JSON.stringify;
    const toml = [
      '[general]',
      'caption_extension = ".txt"',
      'shuffle_caption = false',
      'enable_bucket = false',
      '',
      '[[datasets]]',
      `resolution = ${spec.resolution}`,
      `batch_size = ${spec.batchSize}`,
      '',
      '  [[datasets.subsets]]',
      `  image_dir = ${q(imageDir)}`,
      `  num_repeats = ${repeats}`,
      `  class_tokens = ${q(spec.triggerWord)}`,
      '',
    ].join('\n');
    const datasetConfig = path.join(spec.workDir, 'dataset.toml');
    await fs.writeFile(datasetConfig, toml);
    const promptsFile = path.join(spec.workDir, 'sample-prompts.txt');
    // sd-scripts reads ` --x` in a prompt line as an option.
    const promptLine = (p: string) => `${p.replace(/\s--/g, ' -')} --w ${spec.resolution} --h ${spec.resolution} --d ${spec.seed} --s 20 --l 7`;
    await fs.writeFile(promptsFile, samplePrompts.map(promptLine).join('\n') + '\n');

    const outputDir = path.join(spec.workDir, 'output');
    const states = () => savedStates(outputDir, name);
    const resume = (await states()).at(-1);
    const args = [
      `--pretrained_model_name_or_path=${base.weights}`,
      ...(base.architecture === 'sd2' ? ['--v2'] : []),
      ...(base.vPrediction ? ['--v_parameterization'] : []),
      `--dataset_config=${datasetConfig}`,
      `--output_dir=${outputDir}`,
      `--output_name=${name}`,
      '--save_model_as=safetensors',
      '--network_module=networks.lora',
      `--network_dim=${spec.rank}`,
      `--network_alpha=${spec.alpha}`,
      '--network_train_unet_only',
      `--learning_rate=${spec.learningRate}`,
      '--optimizer_type=AdamW',
      '--lr_scheduler=constant',
      `--max_train_steps=${spec.steps}`,
      `--seed=${spec.seed}`,
      '--mixed_precision=fp16',
      '--save_precision=fp16',
      '--cache_latents',
      '--gradient_checkpointing',
      '--sdpa',
      ...(spec.checkpointEvery ? [`--save_every_n_steps=${spec.checkpointEvery}`, '--save_state'] : []),
      ...(spec.sampleEvery ? [`--sample_every_n_steps=${spec.sampleEvery}`, `--sample_prompts=${promptsFile}`, '--sample_sampler=euler_a'] : []),
      ...(resume ? [`--resume=${resume.path}`, '--skip_until_initial_step'] : []),
    ];
    const resumedFromStep = resume?.step ?? 0;
    return {
      args,
      output: path.join(outputDir, `${name}.safetensors`),
      resumedFromStep,
      progress(line) {
        const bar = parseTqdmLine(line);
        if (!bar || bar.desc !== 'steps') return null;
        return { step: resumedFromStep + bar.n, totalSteps: resumedFromStep + bar.total, loss: postfixNumber(bar.postfix, 'avr_loss'), learningRate: null, remainingSeconds: bar.remainingSeconds };
      },
      lossAfterStep: true,
      checkpoints: states,
      samples: () => sampleSets(path.join(outputDir, 'sample'), name, samplePrompts.length),
      expectations: {
        key: LORA_KEY,
        layout: "kohya's LoRA layout (lora_unet_… .lora_down.weight, .lora_up.weight, .alpha)",
        rank: spec.rank,
        alpha: spec.alpha,
        metadata: [
          (m) => (m.ss_network_module === 'networks.lora' ? null : `its metadata says network module ${JSON.stringify(m.ss_network_module)}, not networks.lora`),
          (m) => (Number(m.ss_network_dim) === spec.rank && Number(m.ss_network_alpha) === spec.alpha ? null : `its metadata says rank ${m.ss_network_dim} and alpha ${m.ss_network_alpha}`),
          (m) => (Number(m.ss_steps) === spec.steps ? null : `its metadata says it trained ${m.ss_steps} steps, not ${spec.steps}`),
          (m) => (m.ss_output_name === name ? null : `its metadata names it ${JSON.stringify(m.ss_output_name)}, not ${JSON.stringify(name)}`),
        ],
      },
    };
  },
};

/** Its state folders that accelerate finished writing, oldest first, each with the step its train_state.json gives. */
async function savedStates(outputDir: string, name: string): Promise<TrainingCheckpoint[]> {
  const pattern = new RegExp(`^${name}-step(\\d{8})-state$`);
  const found: TrainingCheckpoint[] = [];
  for (const entry of (await fs.readdir(outputDir).catch(() => [] as string[])).sort()) {
    if (!pattern.test(entry)) continue;
    const dir = path.join(outputDir, entry);
    if (!(await fs.stat(path.join(dir, 'random_states_0.pkl')).catch(() => null))) continue;
    const state = await fs.readFile(path.join(dir, 'train_state.json'), 'utf8').then(
      (t) => JSON.parse(t) as { current_step?: unknown },
      () => null,
    );
    if (typeof state?.current_step === 'number') found.push({ step: state.current_step, path: dir });
  }
  return found.sort((a, b) => a.step - b.step);
}

/** Per step, the newest complete set of `<name>_<step>_<i>_<time>[_<seed>].png` files. */
async function sampleSets(dir: string, name: string, prompts: number): Promise<{ step: number; files: string[] }[]> {
  const pattern = new RegExp(`^${name}_(\\d{6})_(\\d{2})_(\\d{14})(?:_\\d+)?\\.png$`);
  const sets = new Map<number, Map<number, { time: string; file: string }>>();
  for (const file of await fs.readdir(dir).catch(() => [] as string[])) {
    const m = pattern.exec(file);
    if (!m) continue;
    const step = Number(m[1]);
    const byPrompt = sets.get(step) ?? new Map<number, { time: string; file: string }>();
    const current = byPrompt.get(Number(m[2]));
    if (!current || current.time < m[3]!) byPrompt.set(Number(m[2]), { time: m[3]!, file: path.join(dir, file) });
    sets.set(step, byPrompt);
  }
  return [...sets]
    .sort(([a], [b]) => a - b)
    .flatMap(([step, byPrompt]) => {
      const files = Array.from({ length: prompts }, (_, i) => byPrompt.get(i)?.file);
      return files.every(Boolean) ? [{ step, files: files as string[] }] : [];
    });
}
