import fs from 'node:fs/promises';
import path from 'node:path';
import { localDataset } from '../../datasets/dataset-copy.js';
import { JobFailure } from '../../errors.js';
import type { TaskContext, TaskResult } from '../../jobs/kind.js';
import { parseLoraAdapter } from '../../models/lora-adapter.js';
import { withSafetensorsMetadata } from '../../models/safetensors.js';
import type { TrainingSpec } from '../../trainers/trainer.js';
import { CheckpointStore } from './checkpoint-store.js';
import type { TrainingParams } from './params.js';
import type { CheckpointEvent, SampleEvent, StepEvent, TrainingRun, TrainingRunResult } from './runner-task.js';
import { registerTrainedLora } from './trained-lora.js';
import { attemptFolder, removeAttemptFolder } from './work-folders.js';

const RUNNER_TASK = new URL('./runner-task.ts', import.meta.url).href;

/**
 * One attempt of a training, in the worker: the dataset and base model fetched to this machine,
 * the last checkpoint any earlier attempt stored restored into a fresh work folder, the trainer
 * run in the inference runner (its steps, samples and checkpoints reported as they come, each
 * checkpoint copied to storage), and the adapter registered as a model when the training
 * completes. The attempt's local folder goes whatever the outcome.
 */
export async function run(ctx: TaskContext<TrainingParams>): Promise<TaskResult> {
  const p = ctx.job.params;
  const folder = attemptFolder(ctx.config.training.workDir, ctx.job.id, ctx.job.lease);
  const workDir = path.join(folder, 'work');
  // The latest step reported: every TRAINING event carries it, so progress never goes back.
  let at = { stepIndex: 0, etaSeconds: undefined as number | undefined };
  const training = (report: { message?: string; preview?: string; detail?: Record<string, unknown> }) =>
    ctx.report('TRAINING', { stepIndex: at.stepIndex, stepCount: p.steps, ...(at.etaSeconds !== undefined ? { etaSeconds: at.etaSeconds } : {}), ...report });
  const checkpoints = new CheckpointStore(ctx.storage, ctx.job.id, ctx.job.lease, workDir, ctx.log, (step) => {
    if (!ctx.signal.aborted) training({ message: `Checkpoint at step ${step} stored`, detail: { checkpointStep: step } });
  });
  try {
    await fs.rm(folder, { recursive: true, force: true });
    await fs.mkdir(workDir, { recursive: true });
    ctx.report('PREPARING_DATASET', { message: 'Fetching the dataset' });
    const datasetDir = await localDataset(ctx.storage, p.datasetId, path.join(folder, 'dataset'));
    const resumed = await checkpoints.restore().catch((err: unknown) => {
      throw new JobFailure('STORAGE_ERROR', `could not fetch the last checkpoint: ${(err as Error).message}`, true, { cause: err });
    });
    at = { stepIndex: resumed, etaSeconds: undefined };
    ctx.signal.throwIfAborted();
    ctx.report('LOADING_MODEL', { message: resumed ? `Loading the model; continuing from the checkpoint at step ${resumed}` : 'Loading the model' });
    const base = await ctx.model('base');
    if (!base) throw new JobFailure('MODEL_NOT_FOUND', `model ${p.baseModelId} no longer exists`, false);
    ctx.timing.modelLoadMs = base.fetchMs;
    ctx.signal.throwIfAborted();

    const spec: TrainingSpec = {
      datasetDir,
      baseModel: { dir: base.dir, pipeline: base.model.pipeline, ...(p.trainingWeights ? { trainingWeights: p.trainingWeights } : {}) },
      triggerWord: p.triggerWord,
      name: p.name,
      steps: p.steps,
      rank: p.rank,
      alpha: p.alpha,
      learningRate: p.learningRate,
      resolution: p.resolution,
      batchSize: p.batchSize,
      seed: p.seed,
      workDir,
      checkpointEvery: p.checkpointEvery,
      sampleEvery: p.sampleEvery,
    };
    const input: TrainingRun = { trainer: p.trainer, commands: ctx.config.trainers, spec };
    const trained = await ctx.inRunner<TrainingRunResult>(RUNNER_TASK, input, (name, data) => {
      if (name === 'step') {
        const s = data as StepEvent;
        at = { stepIndex: s.step, etaSeconds: s.etaSeconds ?? undefined };
        ctx.report('TRAINING', {
          stepIndex: s.step,
          stepCount: s.totalSteps,
          ...(s.etaSeconds !== null ? { etaSeconds: Math.round(s.etaSeconds * 100) / 100 } : {}),
          detail: { loss: s.loss, learningRate: s.learningRate },
          at: new Date(s.at),
        });
      } else if (name === 'checkpoint') {
        checkpoints.offer(data as CheckpointEvent);
      } else if (name === 'sample') {
        const s = data as SampleEvent;
        training({ message: `Samples at step ${s.step}`, preview: s.preview, detail: { sampleStep: s.step, prompts: s.prompts } });
      }
    });
    ctx.timing.generateMs = trained.trainMs;
    await checkpoints.settled();
    await ctx.reported();
    ctx.signal.throwIfAborted();

    ctx.report('SAVING', { message: 'Registering the adapter as a LoRA model' });
    const saveStart = performance.now();
    const metadata = { ...trained.metadata, 'kiln.training_job': ctx.job.id };
    // Its own id in the file: no two trainings' adapters are the same bytes, which models must not be.
    const bytes = withSafetensorsMetadata(new Uint8Array(await fs.readFile(trained.adapterPath)), metadata);
    const adapter = parseLoraAdapter(bytes);
    if (!adapter.modules.length) throw new JobFailure('TRAINER_OUTPUT_INVALID', 'the trained adapter holds no LoRA modules', false);
    ctx.timing.saveMs = performance.now() - saveStart;
    return {
      outputs: [],
      commit: (em) => registerTrainedLora(em, ctx.storage, { jobId: ctx.job.id, params: p, pipeline: base.model.pipeline, bytes, metadata }),
    };
  } finally {
    await checkpoints.settled();
    await removeAttemptFolder(folder).catch((err) => ctx.log.warn({ err, folder }, "could not remove the attempt's folder"));
  }
}
