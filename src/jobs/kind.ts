import type { DataSource, EntityManager } from 'typeorm';
import type { z } from 'zod';
import type { Config } from '../config.js';
import type { Job, Timing } from '../db/entities/job.js';
import type { JobOutput } from '../db/entities/job-output.js';
import type { Model } from '../db/entities/model.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Storage } from '../storage/storage.js';

/**
 * What a kind of work (image generation, music generation, training, …) declares, and all the
 * lifecycle knows of it. The lifecycle (submit, attempts and leases, retries, time limits,
 * deadlines, cancel, delete, the reconciler, events, streams, stats) runs every kind the same
 * way; a kind lives in a folder of its own under src/kinds/ and is registered in one line there.
 */
// The registry holds kinds of every parameter shape, hence the default.
export interface KindDefinition<P extends Record<string, unknown> = any> {
  /** Stored in `jobs.kind`. */
  readonly name: string;
  /**
   * The parameters a job of this kind runs with, once completed at submit: the one definition
   * the API's input type, its validation, the stored row, the worker's request and the output
   * metadata follow. `required` names the ones a client must send; the rest are optional.
   */
  readonly params: z.ZodObject;
  readonly required: readonly (keyof P & string)[];
  /** Its steps between QUEUED and the end, in order, with where each puts overall progress. */
  readonly steps: Readonly<Record<string, StepProgress>>;
  /** Every pg-boss queue its jobs can wait in (one per resource class it needs). */
  readonly queues: readonly string[];
  /** The queues a worker with these capabilities can take jobs from. */
  servedQueues(worker: WorkerCapabilities): string[];
  /**
   * Completes an input the client sent (validated against `params`, the optional ones possibly
   * missing) and checks it against what its model can do, inside the submitting transaction:
   * BAD_USER_INPUT naming the field under `field` (e.g. `input.steps`) when refused.
   */
  prepare(em: EntityManager, input: Partial<P>, field: string): Promise<Prepared<P>>;
  /** Seconds these jobs take one after another, queue wait not included. */
  estimateSeconds(em: EntityManager, params: P[]): Promise<number>;
  /** Time limits of one attempt when they are not the service's defaults (trainings run for hours, `config` may say how long). */
  timeouts?(defaults: Timeouts, config: Config): Timeouts;
  /** What a worker needs to take jobs from this queue of the kind, for `queueStats.blocked` (e.g. "the sd-scripts trainer"). */
  queueNeeds?(queue: string): string;
  /** What a worker runs for one attempt; loaded only where jobs run. */
  task(): Promise<{ run(ctx: TaskContext<P>): Promise<TaskResult> }>;
  /** Its GraphQL types and operations; loaded by the API's schema. Without them its jobs are GenericJob. */
  graphql?(): Promise<unknown>;
  /**
   * Removes what its attempts left on this host that no later attempt will use (the partial
   * downloads of jobs that ended); each worker process runs it with the reconciler.
   */
  housekeeping?(host: KindHost): Promise<void>;
}

/** What a kind's housekeeping works with on a worker's host. */
export interface KindHost {
  ds: DataSource;
  storage: Storage;
  config: Config;
  log: Logger;
}

/** Where a step puts overall progress: a point, or a range its units (denoising steps, frames) cross. */
export type StepProgress = number | readonly [from: number, to: number];

export interface Timeouts {
  /** Past this a run is asked to stop at its next step. */
  softTimeoutSeconds: number;
  /** Past this its runner process is killed. */
  hardTimeoutSeconds: number;
}

/** What a worker process can run, for kinds to pick the queues it serves. */
export interface WorkerCapabilities {
  /** Pipelines its execution providers can run. */
  pipelines: string[];
  /** Trainers installed on its host. */
  trainers: string[];
}

export interface Prepared<P> {
  params: P;
  /** The models it uses, by role (`model`, `lora`, …); they cannot be deleted while it waits or runs. */
  models: { role: string; modelId: string }[];
  queue: string;
  /** Jobs with the same affinity share what a worker keeps loaded; workers that have it take them first. */
  affinity?: string;
}

/** One attempt of one job, as the lifecycle lends it to the kind's task. */
export interface TaskContext<P> {
  job: Job & { params: P };
  /** 1 for the first run, 2 for the first retry, … */
  attempt: number;
  /** Aborted when the run must stop: cancel, a lost lease, the soft time limit, shutdown. */
  signal: AbortSignal;
  log: Logger;
  metrics: Metrics;
  /** Filled by the task as it goes; stored with the outcome. */
  timing: Timing;
  storage: Storage;
  /** The worker process's settings, for what a kind reads of them (an install's hub and token, trainers' commands, work folders). */
  config: Config;
  /** Where this attempt's files go; what is there is removed if the attempt does not complete. */
  filesPrefix: string;
  /**
   * Records that the job reached a step (one of the kind's), in order with the others; a write
   * the database refuses (the lease was lost) stops the run.
   */
  report(step: string, report?: StepReport): void;
  /** Resolves once every report so far is written. */
  reported(): Promise<void>;
  /** The model the job uses in this role with its files on this machine, held until the run ends. */
  model(role: string): Promise<HeldModel | undefined>;
  /**
   * Runs `module`'s exported `runInRunner(input, ctx)` in the worker's inference runner process,
   * under the attempt's time limits: killed past the hard one, asked to stop on abort.
   */
  inRunner<T>(module: string, input: unknown, onEvent: (name: string, data: unknown) => void): Promise<T>;
  /**
   * Says the task needs the runner no more (it has what inference made): the worker's slot starts
   * its next job while this task finishes (encodes and stores its outputs), so the accelerator
   * does not wait on the disk. inRunner fails after it.
   */
  releaseRunner(): void;
}

export interface StepReport {
  message?: string;
  /** Units of a ranged step done so far (1..stepCount). */
  stepIndex?: number;
  stepCount?: number;
  /** How far through the ranged step (0..1) when its units are unequal (files of different sizes); by default stepIndex / stepCount. */
  fraction?: number;
  /** Seconds to COMPLETED; by default worked out from the rate of the ranged step's units. */
  etaSeconds?: number;
  /** A small image (data URL) of the current state. */
  preview?: string;
  /** What the kind reports beside the step (a loss, bytes done). */
  detail?: Record<string, unknown>;
  /** When it happened, if not now (the runner's clock, for steps it reports). */
  at?: Date;
}

export interface HeldModel {
  model: Model;
  /** Its folder on this machine. */
  dir: string;
  /** Time spent fetching its files here (0 when they already were). */
  fetchMs: number;
}

/** A file the task stored, before it has a row. */
export type NewOutput = Omit<JobOutput, 'id' | 'jobId' | 'createdAt'>;

export interface TaskResult {
  outputs: NewOutput[];
  /** More writes to commit with COMPLETED, in its fenced transaction (e.g. a trained adapter's model row). */
  commit?(em: EntityManager): Promise<void>;
}
