import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { JobFailure } from '../../errors.js';
import { readSafetensorsHeader, withSafetensorsMetadata } from '../../models/safetensors.js';
import type { RgbImage } from '../../pipelines/pipeline.js';
import { captionWithTrigger, type DatasetFolder, readDatasetFolder } from '../dataset-folder.js';
import { checkTrainingSpec } from '../spec-check.js';
import type { LossPoint, Trainer, TrainerName, TrainerRequirements, TrainingCheckpoint, TrainingHooks, TrainingResult, TrainingSpec } from '../trainer.js';
import { kilnTrainingMetadata } from '../training-metadata.js';
import { type AdapterExpectations, checkTrainedAdapter } from './adapter-check.js';
import { type TrainingBase, trainingBase } from './base-architecture.js';
import { LossRecord } from './loss-record.js';
import { startToolProcess, type ToolExit } from './tool-process.js';

/**
 * What ai-toolkit and sd-scripts have in common, run the same way: Kiln lays out the dataset
 * and writes the tool's config in the work folder, spawns the configured command, turns its
 * progress bar into steps, watches the folder for checkpoints and samples, and when it exits
 * looks at what it wrote, not at its exit code (ai-toolkit exits 0 when interrupted, and a tool
 * may fail after saving): the finished adapter must be there, in the tool's key layout, with the
 * rank, alpha and metadata asked for. Kiln then adds its own metadata and hands it back as
 * `adapter.safetensors`. Real runs need a GPU host with the tool installed.
 */

export interface ExternalTrainerOptions {
  /** The command that runs the tool, as words (no shell); Kiln appends its own arguments. */
  command: string[];
  /** Between SIGINT and SIGKILL when a training is stopped. */
  graceMs?: number;
  /** How often the work folder is looked at for new checkpoints and samples. */
  pollMs?: number;
}

/** One tool's knowledge of itself, for one training. */
export interface ToolRun {
  args: string[];
  /** Where the tool writes the finished adapter. */
  output: string;
  /** The step the tool will continue from (its own resume from the work folder), 0 for a fresh start. */
  resumedFromStep: number;
  /** The training bar's state in one line of output, or null for any other line. */
  progress(line: string): ToolProgress | null;
  /**
   * True when the loss shown with step n is only set on a later refresh of that step (sd-scripts
   * moves the bar, then sets the postfix); false when it comes with the step's first line
   * (ai-toolkit sets the postfix first, so a refresh of step n after it carries step n + 1's loss).
   */
  lossAfterStep: boolean;
  /** Complete checkpoints in the work folder now. */
  checkpoints(): Promise<TrainingCheckpoint[]>;
  /** Complete sets of sample images in the work folder now, one file per prompt, in prompt order. */
  samples(): Promise<{ step: number; files: string[] }[]>;
  expectations: AdapterExpectations;
  /** The tool's own per-step loss record, where it keeps one: it replaces what the progress lines said. */
  recordedLosses?(): Promise<LossPoint[]>;
}

export interface ToolProgress {
  step: number;
  totalSteps: number;
  loss: number | null;
  learningRate: number | null;
  remainingSeconds: number | null;
}

export interface ExternalTool {
  name: TrainerName;
  requirements: TrainerRequirements;
  /** Refuses what the tool cannot train, before anything is written. */
  check?(base: TrainingBase): void;
  prepare(spec: TrainingSpec, dataset: DatasetFolder, captions: string[], samplePrompts: string[], base: TrainingBase): Promise<ToolRun>;
}

const ADAPTER_FILE = 'adapter.safetensors';

export function externalTrainer(tool: ExternalTool, options: ExternalTrainerOptions): Trainer {
  const trainer: Trainer = {
    name: tool.name,
    requirements: tool.requirements,
    async train(spec, hooks) {
      checkTrainingSpec(trainer, spec);
      hooks.signal.throwIfAborted();
      const dataset = await readDatasetFolder(spec.datasetDir);
      const captions = dataset.items.map((item) => captionWithTrigger(item.caption, spec.triggerWord));
      const samplePrompts = spec.samplePrompts ?? [spec.triggerWord, captions[0]!];
      const base = await trainingBase(spec.baseModel);
      tool.check?.(base);
      await fs.mkdir(spec.workDir, { recursive: true });
      const run = await tool.prepare(spec, dataset, captions, samplePrompts, base);
      const losses = await LossRecord.open(spec.workDir);
      // An earlier attempt may have finished the tool's work and died before Kiln took it; one
      // cut short while saving must go, or the tool would resume from it.
      const finished = await wholeSafetensors(run.output);
      if (!finished) {
        await fs.rm(run.output, { force: true });
        await runTool(tool.name, options, run, spec, hooks, samplePrompts, losses);
      }
      hooks.signal.throwIfAborted();
      return takeAdapter(tool.name, run, spec, dataset, losses);
    },
  };
  return trainer;
}

async function runTool(name: string, options: ExternalTrainerOptions, run: ToolRun, spec: TrainingSpec, hooks: TrainingHooks, prompts: string[], losses: LossRecord) {
  const started = performance.now();
  // A hook that throws stops the tool, and its error is the training's.
  const hookErrors: unknown[] = [];
  let stop = () => {};
  const fail = (error: unknown) => {
    hookErrors.push(error);
    stop();
  };
  let lastStep = run.resumedFromStep;
  let pending: ToolProgress | null = null;
  const report = (p: ToolProgress) => {
    if (p.loss !== null) losses.set(p.step, p.loss);
    const perStep = (performance.now() - started) / 1000 / Math.max(1, p.step - run.resumedFromStep);
    const etaSeconds = p.remainingSeconds ?? perStep * (p.totalSteps - p.step);
    hooks.onStep({ step: p.step, totalSteps: p.totalSteps, loss: p.loss, learningRate: p.learningRate ?? spec.learningRate, etaSeconds });
  };
  const onLine = (line: string) => {
    const p = run.progress(line);
    if (!p || hookErrors.length) return;
    if (run.lossAfterStep) {
      if (pending && p.step === pending.step) pending = { ...p, loss: p.loss ?? pending.loss };
      else if (p.step > lastStep) {
        if (pending) report(pending);
        pending = p;
        lastStep = p.step;
      }
    } else if (p.step > lastStep) {
      lastStep = p.step;
      report(p);
    }
  };

  const proc = await startToolProcess(options.command, run.args, {
    cwd: spec.workDir,
    onLine(line) {
      try {
        onLine(line);
      } catch (err) {
        fail(err);
      }
    },
  });
  stop = () => void proc.stop(options.graceMs ?? 30_000);
  const watcher = new OutputWatcher(run, hooks, prompts, fail);
  const poll = setInterval(() => void watcher.look(), options.pollMs ?? 1000);
  hooks.signal.addEventListener('abort', stop, { once: true });
  if (hooks.signal.aborted) stop();
  let exit: ToolExit;
  try {
    exit = await proc.exited;
  } finally {
    clearInterval(poll);
    hooks.signal.removeEventListener('abort', stop);
  }
  hooks.signal.throwIfAborted();
  await watcher.look();
  if (hookErrors.length) throw hookErrors[0];
  if (pending) report(pending);
  if (exit.spawnError) throw new JobFailure('TRAINER_UNAVAILABLE', `could not start ${name} (${options.command[0]}): ${exit.spawnError.message}`, false);
  if (!(await wholeSafetensors(run.output))) {
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    throw new JobFailure('TRAINER_FAILED', `${name} ${how} without writing its adapter; its last output: ${proc.tail().slice(-8).join(' | ')}`, true);
  }
}

async function takeAdapter(name: TrainerName, run: ToolRun, spec: TrainingSpec, dataset: DatasetFolder, losses: LossRecord): Promise<TrainingResult> {
  const bytes = new Uint8Array(await fs.readFile(run.output));
  const own = checkTrainedAdapter(name, bytes, run.expectations);
  const kiln = kilnTrainingMetadata(name, spec, dataset);
  const adapterPath = path.join(spec.workDir, ADAPTER_FILE);
  await fs.writeFile(`${adapterPath}.partial`, withSafetensorsMetadata(bytes, kiln));
  await fs.rename(`${adapterPath}.partial`, adapterPath);
  const curve = await losses.curve(await run.recordedLosses?.());
  return { adapterPath, metadata: { ...own, ...kiln }, lossCurve: curve.filter((p) => p.step >= 1 && p.step <= spec.steps), resumedFromStep: run.resumedFromStep };
}

/** Whether the file is there and as long as its safetensors header says: not cut short while written. */
export function wholeSafetensors(file: string): Promise<boolean> {
  return readSafetensorsHeader(file).then(
    () => true,
    () => false,
  );
}

/** Reports each checkpoint and set of samples once, in order, as they appear complete. */
class OutputWatcher {
  private readonly seenCheckpoints = new Set<string>();
  private readonly seenSamples = new Set<number>();
  private looking: Promise<void> = Promise.resolve();

  constructor(
    private readonly run: ToolRun,
    private readonly hooks: TrainingHooks,
    private readonly prompts: string[],
    private readonly fail: (error: unknown) => void,
  ) {}

  look(): Promise<void> {
    this.looking = this.looking.then(() => this.scan()).catch(this.fail);
    return this.looking;
  }

  private async scan() {
    for (const c of await this.run.checkpoints()) {
      if (this.seenCheckpoints.has(c.path)) continue;
      this.seenCheckpoints.add(c.path);
      await this.hooks.onCheckpoint(c);
    }
    for (const s of await this.run.samples()) {
      if (this.seenSamples.has(s.step)) continue;
      const images = await Promise.all(s.files.map(decodeSample)).catch(() => null);
      // Unreadable yet: the tool is still writing it.
      if (!images) continue;
      this.seenSamples.add(s.step);
      await this.hooks.onSample({ step: s.step, prompts: this.prompts.slice(0, images.length), images });
    }
  }
}

async function decodeSample(file: string): Promise<RgbImage> {
  const { data, info } = await sharp(file, { failOn: 'truncated' }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}
