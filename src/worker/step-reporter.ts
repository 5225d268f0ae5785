import type { StepProgress, StepReport } from '../jobs/kind.js';
import type { NewEvent } from '../events/event-log.js';

/**
 * Turns a kind's step reports into events: where each step puts overall progress (spread over
 * a ranged step by its units), and the time left, from the rate of a ranged step's units when
 * the kind does not say.
 */
export class StepReporter {
  /** When the ranged step now reported began: the end of the step before it. */
  private rangeStart: number | undefined;
  private rangeStep: string | undefined;
  private lastAt = performance.now();

  constructor(private readonly steps: Readonly<Record<string, StepProgress>>) {}

  event(step: string, r: StepReport = {}): Omit<NewEvent, 'attempt' | 'status'> {
    const place = this.steps[step];
    if (place === undefined) throw new Error(`${step} is not one of this kind's steps (${Object.keys(this.steps).join(', ')})`);
    const now = performance.now();
    let progress: number;
    let eta = r.etaSeconds ?? null;
    if (typeof place === 'number') {
      progress = place;
      this.rangeStep = undefined;
    } else {
      if (this.rangeStep !== step) {
        this.rangeStep = step;
        this.rangeStart = this.lastAt;
      }
      const done = Math.min(1, r.fraction ?? (r.stepIndex !== undefined && r.stepCount ? r.stepIndex / r.stepCount : 0));
      progress = place[0] + (place[1] - place[0]) * done;
      if (eta === null && r.stepIndex && r.stepCount) {
        const perUnit = (now - this.rangeStart!) / r.stepIndex / 1000;
        eta = Math.round(perUnit * (r.stepCount - r.stepIndex) * 100) / 100;
      }
    }
    this.lastAt = now;
    return {
      step,
      progress,
      stepIndex: r.stepIndex ?? null,
      stepCount: r.stepCount ?? null,
      message: r.message ?? null,
      etaSeconds: eta,
      preview: r.preview ?? null,
      detail: r.detail ?? null,
      at: r.at ?? null,
    };
  }
}
