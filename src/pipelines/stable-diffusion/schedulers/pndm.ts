import { alphasCumprod } from './noise-schedule.js';
import type { Scheduler } from './scheduler.js';
import type { SchedulerConfig } from './scheduler-config.js';
import { roundHalfEven, spacedTimesteps } from './timestep-spacing.js';

/**
 * diffusers' PNDMScheduler as Stable Diffusion configures it (skip_prk_steps): pseudo linear
 * multistep, which mixes the last four noise predictions. Its second UNet run revisits the first
 * timestep to average two predictions, so n steps take n + 1 UNet runs.
 */
export function createPndmScheduler(config: SchedulerConfig, steps: number): Scheduler {
  const cumprod = alphasCumprod(config);
  const final = config.setAlphaToOne ? 1 : cumprod[0]!;
  const ascending = spacedTimesteps(config.timestepSpacing, config.numTrainTimesteps, steps, config.stepsOffset).map(roundHalfEven).reverse();
  const timesteps = [...ascending.slice(0, -1), ...ascending.slice(-2, -1), ...ascending.slice(-1)].reverse();
  const stride = Math.floor(config.numTrainTimesteps / steps);

  const ets: Float32Array[] = [];
  let firstSample: Float32Array | undefined;
  let counter = 0;

  /** The sample at `prevT` from the one at `t` (the paper's φ), and the clean estimate on the way. */
  function transfer(sample: Float32Array, t: number, prevT: number, output: Float32Array) {
    const alpha = cumprod[t]!;
    const alphaPrev = prevT >= 0 ? cumprod[prevT]! : final;
    const beta = 1 - alpha;
    const sampleCoeff = Math.sqrt(alphaPrev / alpha);
    const denom = alpha * Math.sqrt(1 - alphaPrev) + Math.sqrt(alpha * beta * alphaPrev);
    const mix = (alphaPrev - alpha) / denom;
    const prev = new Float32Array(sample.length);
    const denoised = new Float32Array(sample.length);
    for (let k = 0; k < prev.length; k++) {
      const eps = config.predictionType === 'v_prediction' ? Math.sqrt(alpha) * output[k]! + Math.sqrt(beta) * sample[k]! : output[k]!;
      prev[k] = sampleCoeff * sample[k]! - mix * eps;
      denoised[k] = (sample[k]! - Math.sqrt(beta) * eps) / Math.sqrt(alpha);
    }
    return { prev, denoised };
  }

  return {
    timesteps,
    initNoiseSigma: 1,
    inputScale: () => 1,
    step(i, output, sample) {
      let t = timesteps[i]!;
      let prevT = t - stride;
      if (counter !== 1) {
        if (ets.length > 3) ets.shift();
        ets.push(output);
      } else {
        prevT = t;
        t += stride;
      }
      const e = ets.length;
      let eps: Float32Array;
      let from = sample;
      if (e === 1 && counter === 0) {
        eps = output;
        firstSample = sample;
      } else if (e === 1 && counter === 1) {
        eps = combine([output, ets[0]!], [1 / 2, 1 / 2]);
        from = firstSample!;
        firstSample = undefined;
      } else if (e === 2) {
        eps = combine([ets[1]!, ets[0]!], [3 / 2, -1 / 2]);
      } else if (e === 3) {
        eps = combine([ets[2]!, ets[1]!, ets[0]!], [23 / 12, -16 / 12, 5 / 12]);
      } else {
        eps = combine([ets[3]!, ets[2]!, ets[1]!, ets[0]!], [55 / 24, -59 / 24, 37 / 24, -9 / 24]);
      }
      counter++;
      return transfer(from, t, prevT, eps);
    },
  };
}

function combine(arrays: Float32Array[], weights: number[]): Float32Array {
  const out = new Float32Array(arrays[0]!.length);
  arrays.forEach((a, j) => {
    const w = weights[j]!;
    for (let k = 0; k < out.length; k++) out[k]! += w * a[k]!;
  });
  return out;
}
