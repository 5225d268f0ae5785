import type { StepReport } from '../../jobs/kind.js';

/** Least time between two DOWNLOADING events: each is a row and a message to every watcher. */
const REPORT_INTERVAL_MS = 500;
/** The rate is measured over this much of the recent past, so that it follows a changing link. */
const RATE_WINDOW_MS = 10_000;

/**
 * The DOWNLOADING events of an install: file i of n as the step's units, bytes done of the total
 * as its fraction (files differ in size by orders of magnitude), and the rate and time left from
 * the bytes that crossed the network in the last seconds (bytes resumed from an earlier attempt
 * count as done, not towards the rate).
 */
export class TransferProgress {
  private sizes = new Map<string, number>();
  /** Bytes of each file on disk so far. */
  private have = new Map<string, number>();
  private done = 0;
  private filesDone = 0;
  private current = '';
  private samples: { at: number; bytes: number }[] = [];
  private transferred = 0;
  private lastReport = -Infinity;

  constructor(
    files: { path: string; size: number | undefined }[],
    private readonly report: (r: StepReport) => void,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    for (const f of files) this.sizes.set(f.path, f.size ?? 0);
  }

  private get total() {
    let n = 0;
    for (const size of this.sizes.values()) n += size;
    return n;
  }

  /**
   * A file's transfer begins (again, when its bytes did not verify): its size once its server says
   * (single-file URLs), and the bytes of it already on disk.
   */
  started(path: string, size: number | undefined, have: number): void {
    if (size !== undefined) this.sizes.set(path, size);
    this.current = path;
    this.done += have - (this.have.get(path) ?? 0);
    this.have.set(path, have);
    this.emit(false);
  }

  bytes(path: string, n: number): void {
    this.current = path;
    this.have.set(path, (this.have.get(path) ?? 0) + n);
    this.done += n;
    this.transferred += n;
    this.emit(false);
  }

  finished(path: string): void {
    this.current = path;
    this.filesDone++;
    this.emit(this.filesDone === this.sizes.size);
  }

  private emit(force: boolean): void {
    const at = this.now();
    this.samples.push({ at, bytes: this.transferred });
    while (this.samples.length > 2 && this.samples[1]!.at < at - RATE_WINDOW_MS) this.samples.shift();
    if (!force && at - this.lastReport < REPORT_INTERVAL_MS) return;
    this.lastReport = at;
    const oldest = this.samples[0]!;
    const seconds = (at - oldest.at) / 1000;
    const rate = seconds > 0 ? (this.transferred - oldest.bytes) / seconds : 0;
    const total = this.total;
    const count = this.sizes.size;
    const index = Math.min(this.filesDone + 1, count);
    this.report({
      message: `Downloading ${this.current} (file ${index} of ${count})`,
      stepIndex: index,
      stepCount: count,
      fraction: total > 0 ? Math.min(1, this.done / total) : 0,
      ...(rate > 0 ? { etaSeconds: Math.round(((total - this.done) / rate) * 10) / 10 } : {}),
      detail: { bytesDone: this.done, bytesTotal: total, bytesPerSecond: Math.round(rate), file: this.current, filesDone: this.filesDone, fileCount: count },
    });
  }
}
