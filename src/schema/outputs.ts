import type { JobOutput } from '../db/entities/job-output.js';
import { builder } from './builder.js';

const meta = <T>(o: JobOutput, key: string) => o.metadata[key] as T;

/** A file a job made, of some media type; each type adds its own fields. */
export const OutputRef = builder.interfaceRef<JobOutput>('Output').implement({
  description: 'A file a job made: an image, a piece of audio, …',
  resolveType: (o) => (o.mediaType === 'audio' ? 'Audio' : 'Image'),
  fields: (t) => ({
    index: t.exposeInt('index', { description: 'Its place among the outputs of its job, from 0.' }),
    url: t.string({
      description: 'Signed link to the file; it expires (KILN_URL_TTL_S).',
      resolve: (o, _, ctx) => ctx.services.storage.signedUrl(o.storageKey, { baseUrl: ctx.baseUrl }),
    }),
    mimeType: t.exposeString('mimeType'),
    bytes: t.exposeInt('bytes'),
    sha256: t.exposeString('sha256'),
  }),
});

export const ImageRef = builder.objectRef<JobOutput>('Image').implement({
  interfaces: [OutputRef],
  fields: (t) => ({
    width: t.int({ resolve: (o) => meta<number>(o, 'width') }),
    height: t.int({ resolve: (o) => meta<number>(o, 'height') }),
    seed: t.float({ resolve: (o) => meta<number>(o, 'seed') }),
  }),
});

export const AudioRef = builder.objectRef<JobOutput>('Audio').implement({
  interfaces: [OutputRef],
  description: 'A piece of audio (WAV).',
  fields: (t) => ({
    durationSeconds: t.float({ resolve: (o) => meta<number>(o, 'durationSeconds') }),
    sampleRate: t.int({ resolve: (o) => meta<number>(o, 'sampleRate') }),
    channels: t.int({ resolve: (o) => meta<number>(o, 'channels') }),
    seed: t.float({ resolve: (o) => meta<number>(o, 'seed') }),
  }),
});
