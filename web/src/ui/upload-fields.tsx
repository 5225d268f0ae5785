import { formatBytes } from './format';
import { ProgressBar } from './progress-bar';

/** How a form sends its files: by size (one request up to the multipart limit), in one request, or by direct upload. */
export type SendMethod = 'auto' | 'multipart' | 'direct';

export interface UploadProgressState {
  sent: number;
  total: number;
}

/** The choice of how files are sent; `autoLabel` says what "by size" means for this form. */
export function SendMethodField({ name, method, onChange, autoLabel }: { name: string; method: SendMethod; onChange: (m: SendMethod) => void; autoLabel: string }) {
  return (
    <fieldset className="row">
      <legend>Send</legend>
      {(['auto', 'multipart', 'direct'] as const).map((m) => (
        <label key={m} className="inline">
          <input type="radio" name={name} checked={method === m} onChange={() => onChange(m)} />{' '}
          {m === 'auto' ? autoLabel : m === 'multipart' ? 'in one request (multipart)' : 'direct upload'}
        </label>
      ))}
    </fieldset>
  );
}

/** Bytes sent while an upload runs, as a bar and in words; `then` says what Kiln does once they have arrived. */
export function UploadProgress({ progress, multipart, label, then }: { progress: UploadProgressState | undefined; multipart: boolean; label: string; then: string }) {
  if (!progress) return null;
  return (
    <>
      <ProgressBar value={progress.total ? progress.sent / progress.total : 0} label={label} />
      <p className="muted" aria-live="polite">
        {formatBytes(progress.sent)} of {formatBytes(progress.total)} sent{multipart ? '' : ' (direct)'}; {then}
      </p>
    </>
  );
}
