import type { TimestepSpacing } from './scheduler-config.js';

/**
 * Which training timesteps n inference steps visit, as diffusers computes them with numpy
 * (whose `round` rounds halves to even, and whose float `arange` steps by (start + step) − start,
 * which decides how some halves round).
 */

export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `np.linspace(start, stop, num)`. */
export function npLinspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? stop : i * step + start));
}

/** `np.arange(start, stop, step)` with a float step: numpy fills it with the step as first taken, (start + step) − start. */
export function npArange(start: number, stop: number, step: number): number[] {
  const length = Math.max(0, Math.ceil((stop - start) / step));
  const delta = start + step - start;
  return Array.from({ length }, (_, i) => (i === 0 ? start : start + i * delta));
}

/**
 * The timesteps in descending order: `linspace` ones may be fractional (DDIM and PNDM round
 * them, Euler keeps them), `leading` ones are multiples of ⌊T/n⌋ plus `stepsOffset`,
 * `trailing` ones count down from T−1.
 */
export function spacedTimesteps(spacing: TimestepSpacing, trainSteps: number, steps: number, stepsOffset: number): number[] {
  switch (spacing) {
    case 'linspace':
      return npLinspace(0, trainSteps - 1, steps).reverse();
    case 'leading': {
      const ratio = Math.floor(trainSteps / steps);
      return Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + stepsOffset);
    }
    case 'trailing':
      return npArange(trainSteps, 0, -trainSteps / steps).map((t) => roundHalfEven(t) - 1);
  }
}
