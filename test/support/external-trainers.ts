/**
 * What the ai-toolkit and sd-scripts adapter tests share: a work area with a dataset and a
 * base model folder that says its family (as a diffusers folder's configs do), the stand-in
 * commands, hooks that record everything, and PyYAML / tomllib to read what Kiln wrote the way
 * the real tools do, where python3 has them.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TrainingCheckpoint, TrainingHooks, TrainingProgress, TrainingSample, TrainingSpec } from '../../src/trainers/trainer.js';
import { writeTrainingDataset } from './training-datasets.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

export const standin = (tool: 'ai-toolkit' | 'sd-scripts', ...options: string[]) => [process.execPath, path.join(ROOT, `test/support/${tool}-standin.mjs`), ...options];

/** A dataset of three pictures and an SD-family base folder (unet/config.json, scheduler config) under `root`. */
export async function externalTrainingFixtures(root: string, crossAttentionDim = 768): Promise<{ datasetDir: string; baseDir: string; captions: string[] }> {
  const datasetDir = path.join(root, 'dataset');
  const captions = (await writeTrainingDataset(datasetDir, 3)).map((p) => p.caption);
  const baseDir = path.join(root, 'base');
  await fs.mkdir(path.join(baseDir, 'unet'), { recursive: true });
  await fs.mkdir(path.join(baseDir, 'scheduler'), { recursive: true });
  await fs.writeFile(path.join(baseDir, 'unet', 'config.json'), JSON.stringify({ _class_name: 'UNet2DConditionModel', cross_attention_dim: crossAttentionDim }));
  await fs.writeFile(path.join(baseDir, 'scheduler', 'scheduler_config.json'), JSON.stringify({ _class_name: 'PNDMScheduler', prediction_type: 'epsilon' }));
  return { datasetDir, baseDir, captions };
}

export function externalSpec(fixtures: { datasetDir: string; baseDir: string }, workDir: string, overrides: Partial<TrainingSpec> = {}): TrainingSpec {
  return {
    datasetDir: fixtures.datasetDir,
    baseModel: { dir: fixtures.baseDir, pipeline: 'stable-diffusion-onnx' },
    triggerWord: 'kilnstyle',
    name: 'my lora!',
    steps: 10,
    rank: 4,
    alpha: 2,
    learningRate: 1e-4,
    resolution: 64,
    batchSize: 2,
    seed: 5,
    workDir,
    checkpointEvery: 4,
    sampleEvery: 5,
    ...overrides,
  };
}

export interface Recorded {
  steps: TrainingProgress[];
  checkpoints: TrainingCheckpoint[];
  samples: TrainingSample[];
}

export function recordingHooks(overrides: Partial<TrainingHooks> = {}): TrainingHooks & { recorded: Recorded } {
  const recorded: Recorded = { steps: [], checkpoints: [], samples: [] };
  return {
    recorded,
    signal: new AbortController().signal,
    onStep: (p) => void recorded.steps.push(p),
    onCheckpoint: (c) => void recorded.checkpoints.push(c),
    onSample: (s) => void recorded.samples.push(s),
    ...overrides,
  };
}

/** Whether a process with this pid still runs (a zombie waiting for its parent to reap it does not). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, { encoding: 'utf8', flag: 'r' });
  return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

/** The file parsed by python3's PyYAML (ai-toolkit's reader) or tomllib, or null where python3 lacks it. */
export async function readWithPython(kind: 'yaml' | 'toml', file: string): Promise<unknown> {
  const run = promisify(execFile);
  const module = kind === 'yaml' ? 'yaml' : 'tomllib';
  try {
    await run('python3', ['-c', `import ${module}`]);
  } catch {
    console.warn(`python3 with ${module} is not here: skipping the check of ${path.basename(file)} as the real tool reads it`);
    return null;
  }
  const load = kind === 'yaml' ? 'yaml.safe_load(open(sys.argv[1]))' : 'tomllib.load(open(sys.argv[1], "rb"))';
  const { stdout } = await run('python3', ['-c', `import json, sys, ${module}; print(json.dumps(${load}))`, file]);
  return JSON.parse(stdout);
}
