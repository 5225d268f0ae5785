import type { GenerationAttempt } from '../db/entities/generation-attempt.js';
import type { Timing } from '../db/entities/generation.js';
import type { Image } from '../db/entities/image.js';
import { builder } from './builder.js';

/** The parts of a generation that are objects of their own: images, timing, errors, attempts. */

export const ImageRef = builder.objectRef<Image>('Image').implement({
  fields: (t) => ({
    url: t.string({
      description: 'Signed link to the image; it expires (KILN_URL_TTL_S).',
      resolve: (img, _, ctx) => ctx.services.storage.signedUrl(img.storageKey, { baseUrl: ctx.baseUrl }),
    }),
    width: t.exposeInt('width'),
    height: t.exposeInt('height'),
    bytes: t.exposeInt('bytes'),
    sha256: t.exposeString('sha256'),
    seed: t.exposeFloat('seed'),
    mimeType: t.exposeString('mimeType'),
  }),
});

export const TimingRef = builder.objectRef<Timing>('Timing').implement({
  description: 'Where the time went, in milliseconds.',
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
  fields: (t) => ({
    code: t.exposeString('code'),
    message: t.exposeString('message'),
    retryable: t.exposeBoolean('retryable'),
  }),
});

export const GenerationAttemptRef = builder.objectRef<GenerationAttempt>('GenerationAttempt').implement({
  description: 'One run of a generation by one worker.',
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
