import type { JobAttempt } from '../db/entities/job-attempt.js';
import type { Timing } from '../db/entities/job.js';
import { builder } from './builder.js';

/** The parts of a job that are objects of their own: timing, errors, attempts. */

export const TimingRef = builder.objectRef<Timing>('Timing').implement({
  description: 'Where the time went, in milliseconds (each kind fills the parts it has).',
  fields: (t) => ({
    modelLoadMs: t.exposeFloat('modelLoadMs', { nullable: true }),
    loraLoadMs: t.exposeFloat('loraLoadMs', { nullable: true }),
    encodeMs: t.exposeFloat('encodeMs', { nullable: true }),
    generateMs: t.exposeFloat('generateMs', { nullable: true }),
    saveMs: t.exposeFloat('saveMs', { nullable: true }),
    totalMs: t.exposeFloat('totalMs', { nullable: true }),
  }),
});

export interface ErrorShape {
  code: string;
  message: string;
  retryable: boolean;
}

export const GenerationErrorRef = builder.objectRef<ErrorShape>('GenerationError').implement({
  description: "Why a job (of any kind) failed: its last attempt's error.",
  fields: (t) => ({
    code: t.exposeString('code'),
    message: t.exposeString('message'),
    retryable: t.exposeBoolean('retryable'),
  }),
});

export const GenerationAttemptRef = builder.objectRef<JobAttempt>('GenerationAttempt').implement({
  description: 'One run of a job by one worker.',
  fields: (t) => ({
    attempt: t.exposeInt('attempt', { description: '1 for the first run, 2 for the first retry, …' }),
    worker: t.exposeString('worker', { description: 'host:pid of the worker process' }),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    endedAt: t.expose('endedAt', { type: 'DateTime', nullable: true }),
    outcome: t.exposeString('outcome', {
      nullable: true,
      description: 'COMPLETED, RETRY, FAILED, CANCELLED or WORKER_LOST; null while it runs',
    }),
    error: t.field({
      type: GenerationErrorRef,
      nullable: true,
      resolve: (a) => (a.errorCode ? { code: a.errorCode, message: a.errorMessage ?? '', retryable: a.errorRetryable ?? false } : null),
    }),
  }),
});
