import { formatBytes } from '../models/model-cache-space.js';

/** What the install CLI reads of an event. */
export interface ProgressLine {
  step: string;
  progress: number;
  message: string | null;
  etaSeconds: number | null;
  detail: { bytesDone?: number; bytesTotal?: number; bytesPerSecond?: number } | null;
}

const duration = (s: number) => (s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

/**
 * One line for a terminal `width` wide: a bar of the job's overall progress, the bytes done of
 * the total with the rate and time left while it downloads, and what it is doing.
 */
export function renderProgress(e: ProgressLine, width: number): string {
  const percent = `${String(Math.floor(e.progress * 100)).padStart(3)}%`;
  const d = e.detail;
  const bytes = d?.bytesTotal ? ` ${formatBytes(d.bytesDone ?? 0)} / ${formatBytes(d.bytesTotal)}` : '';
  const rate = e.step === 'DOWNLOADING' && d?.bytesPerSecond ? ` ${formatBytes(d.bytesPerSecond)}/s` : '';
  const eta = e.step === 'DOWNLOADING' && e.etaSeconds !== null && e.etaSeconds > 0 ? ` ETA ${duration(e.etaSeconds)}` : '';
  const what = ` ${e.step}${e.message ? `: ${e.message}` : ''}`;
  const barWidth = Math.max(10, Math.min(30, width - 60));
  const filled = Math.round(e.progress * barWidth);
  const line = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${percent}${bytes}${rate}${eta}${what}`;
  return line.length > width ? `${line.slice(0, Math.max(0, width - 1))}…` : line;
}
