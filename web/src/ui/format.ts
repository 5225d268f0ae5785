export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 10 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

export function formatSeconds(s: number | null | undefined): string {
  if (s === null || s === undefined) return '–';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 90) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export const formatDate = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '–');

export const percent = (p: number) => `${Math.round(p * 100)}%`;

/** Labels for the pipeline's steps. */
export const STEP_LABELS: Record<string, string> = {
  QUEUED: 'Queued',
  PREPARING_DATASET: 'Preparing the dataset',
  DOWNLOADING: 'Downloading',
  VERIFYING: 'Verifying',
  REGISTERING: 'Registering',
  LOADING_MODEL: 'Loading the model',
  ENCODING_PROMPT: 'Encoding the prompt',
  GENERATING: 'Generating',
  TRAINING: 'Training',
  SAVING: 'Saving',
  COMPLETED: 'Completed',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
};

export const STATUS_LABELS: Record<string, string> = {
  PENDING: 'Pending',
  RUNNING: 'Running',
  COMPLETED: 'Completed',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
};
