import type { Job } from '../api/job-operations';
import type { KindView } from './kind-view';

const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
const numberIn = (params: Record<string, unknown>, key: string) => (typeof params[key] === 'number' ? (params[key] as number) : undefined);

/** A kind the app has no view of (yet): named by its prompt where its params have one, described by its params. */
export const genericKind = (kind: string): KindView => ({
  kind,
  label: kind,
  typename: 'GenericJob',
  fields: '',
  title: (job: Job) => (typeof job.params.prompt === 'string' ? job.params.prompt : `${kind} job ${job.id.slice(0, 8)}`),
  summary: () => `a job of kind ${kind}`,
  previewSize: (job: Job) => {
    const [width, height] = [numberIn(job.params, 'width'), numberIn(job.params, 'height')];
    return width && height ? { width, height } : undefined;
  },
  parameters: (job: Job) => Object.entries(job.params).map(([k, v]) => [k, text(v)]),
  copyText: (job: Job) => JSON.stringify(job.params, null, 2),
});
