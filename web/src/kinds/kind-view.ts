import type { ComponentType } from 'react';
import type { Job, JobDetail } from '../api/job-operations';

/**
 * How the app shows the jobs of one kind: the GraphQL type they come as and the fields it reads
 * of it, and how a card, a queue row and a job's page name and describe one. A kind without a
 * view is shown from what every job has (its `params`, its outputs): see generic-kind.ts.
 */
export interface KindView<J extends Job = Job> {
  /** `Job.kind`: "image", … */
  kind: string;
  /** For the gallery's filter: "Images". */
  label: string;
  /** The GraphQL type of its jobs ("Generation"), and the fields read beside the Job interface's. */
  typename: string;
  fields: string;
  /** What names a job: its prompt. */
  title(job: J): string;
  /** One line of what it runs with, for the queue: model, size, steps. */
  summary(job: J): string;
  /** What its timing calls the model's run (`Timing.generateMs`): "Denoising", "Training"; "Running" when not given. */
  runLabel?: string;
  /** What its GENERATING or TRAINING events count ("step i/N"; "frame i/N" for music); "step" when not given. */
  unit?: string;
  /** The size its live previews have, when it has them. */
  previewSize(job: J): { width: number; height: number } | undefined;
  /** Its parameters as a job's page lists them. */
  parameters(job: J & JobDetail): [string, string][];
  /** What "Copy parameters" copies: something to send again. */
  copyText(job: J): string;
  /** A job page's own actions ("Generate again"). */
  Actions?: ComponentType<{ job: J }>;
}

/** Declares a kind's view; the registry hands each only jobs of its own kind. */
export const defineKind = <J extends Job>(view: KindView<J>) => view as unknown as KindView;
