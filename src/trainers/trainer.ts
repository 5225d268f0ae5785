import type { RgbImage } from '../pipelines/pipeline.js';

/**
 * What every LoRA trainer (Kiln's own `builtin`, ai-toolkit, sd-scripts) offers the worker.
 * Knows nothing of jobs: the caller gives a spec and hooks, the trainer gives back a checked
 * adapter file.
 */

export interface TrainingSpec {
  /** A dataset folder in Kiln's canonical layout (`NNN.png`, `NNN.txt`, `manifest.json`): see dataset-folder.ts. */
  datasetDir: string;
  baseModel: BaseModelSpec;
  /** Prepended to every caption that lacks it, as a word. */
  triggerWord: string;
  /** The adapter's name inside its file (`ss_output_name`) and in the external tools' file names. */
  name: string;
  steps: number;
  rank: number;
  alpha: number;
  learningRate: number;
  /** Side of the square the images are resized (and centre-cropped) to. */
  resolution: number;
  batchSize: number;
  seed: number;
  /**
   * The trainer's own folder for this training (layouts, checkpoints, samples, logs). The same
   * folder on a retry makes the trainer continue from its last checkpoint there.
   */
  workDir: string;
  /** A checkpoint every this many steps; 0 for none. */
  checkpointEvery: number;
  /** Sample images every this many steps; 0 for none. */
  sampleEvery: number;
  /** Prompts of the sample images; by default the trigger word and the first caption. */
  samplePrompts?: string[];
}

export interface BaseModelSpec {
  /** The folder Kiln generates with. */
  dir: string;
  /** Its pipeline's name (`builtin`, `stable-diffusion-onnx`). */
  pipeline: string;
  /**
   * What an external trainer loads, when not `dir`: a diffusers folder, a single-file checkpoint
   * or a Hugging Face id (Kiln's ONNX exports hold no PyTorch weights to train).
   */
  trainingWeights?: string;
  /** SD family of a Stable Diffusion base; read from its `unet/config.json` when absent. */
  architecture?: StableDiffusionArchitecture;
}

export type StableDiffusionArchitecture = 'sd1' | 'sd2' | 'sdxl';

export interface TrainingProgress {
  /** Steps done, 1…totalSteps. */
  step: number;
  totalSteps: number;
  /** This step's loss (sd-scripts reports its running average); null when the trainer printed none. */
  loss: number | null;
  learningRate: number;
  /** From the step rate of this run so far; null until there is one. */
  etaSeconds: number | null;
}

export interface TrainingSample {
  step: number;
  prompts: string[];
  /** One per prompt, 8-bit RGB. */
  images: RgbImage[];
}

export interface TrainingCheckpoint {
  step: number;
  /** The checkpoint file (or folder, for sd-scripts' state) in the work folder. */
  path: string;
}

export interface TrainingHooks {
  /** Once aborted the trainer stops (an external process: SIGINT, then SIGKILL) and rejects with the signal's reason. */
  signal: AbortSignal;
  onStep(progress: TrainingProgress): void;
  /** Awaited: training waits while the caller stores the images. */
  onSample(sample: TrainingSample): void | Promise<void>;
  onCheckpoint(checkpoint: TrainingCheckpoint): void | Promise<void>;
}

export interface LossPoint {
  step: number;
  loss: number;
}

export interface TrainingResult {
  /** The adapter, `adapter.safetensors` in the work folder, its keys and metadata checked. */
  adapterPath: string;
  /** The file's metadata: the trainer's own (`ss_*`, …) and Kiln's (`kiln.*`: parameters, dataset hash). */
  metadata: Record<string, string>;
  lossCurve: LossPoint[];
  /** The checkpoint step this run continued from; 0 when it started afresh. */
  resumedFromStep: number;
}

/** What a host needs to run a trainer; workers advertise the trainers whose needs they meet. */
export interface TrainerRequirements {
  /** Base model pipelines it trains LoRAs for. */
  pipelines: string[];
  /** `cpu`: any host; `cuda`: an NVIDIA GPU with the tool installed. */
  device: 'cpu' | 'cuda';
}

export interface Trainer {
  readonly name: TrainerName;
  readonly requirements: TrainerRequirements;
  train(spec: TrainingSpec, hooks: TrainingHooks): Promise<TrainingResult>;
}

export const trainerNames = ['builtin', 'ai-toolkit', 'sd-scripts'] as const;
export type TrainerName = (typeof trainerNames)[number];
