import { percent } from './format';

/** A progress bar screen readers announce: `value` is 0..1. */
export function ProgressBar({ value, label }: { value: number; label: string }) {
  const clamped = Math.min(1, Math.max(0, value));
  return (
    <div className="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(clamped * 100)}>
      <div className="progress-fill" style={{ width: percent(clamped) }} />
    </div>
  );
}
