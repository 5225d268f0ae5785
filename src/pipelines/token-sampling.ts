import type { SeededRandom } from './random.js';

/**
 * Choosing the next token from a row of scores the way transformers' generate does: greedy is
 * the first index of the largest score (torch.argmax); sampling divides by the temperature
 * (TemperatureLogitsWarper), keeps the scores at least as large as the k-th largest
 * (TopKLogitsWarper: ties at the threshold stay), takes the softmax and draws one index with a
 * single uniform from Kiln's seeded generator (where torch.multinomial would use torch's).
 */
export interface SamplingSettings {
  /** 0: greedy. */
  temperature: number;
  /** 0 or ≥ the row's length: no top-k filtering. */
  topK: number;
}

export function argmax(scores: Float32Array, offset: number, length: number): number {
  let best = 0;
  let bestValue = scores[offset]!;
  for (let v = 1; v < length; v++) {
    const x = scores[offset + v]!;
    if (x > bestValue || (Number.isNaN(bestValue) && !Number.isNaN(x))) {
      best = v;
      bestValue = x;
    }
  }
  return best;
}

/** A reusable sampler: keeps its scratch buffers between calls (one call per codebook per decoder step). */
export class TokenSampler {
  private readonly scratch: Float32Array;
  private readonly weights: Float64Array;

  constructor(
    private readonly vocab: number,
    private readonly settings: SamplingSettings,
  ) {
    this.scratch = new Float32Array(vocab);
    this.weights = new Float64Array(vocab);
  }

  get greedy(): boolean {
    return this.settings.temperature === 0;
  }

  /** The next token of the row `scores[offset … offset + vocab)`; `random` is only drawn from when sampling. */
  next(scores: Float32Array, offset: number, random: SeededRandom): number {
    if (this.greedy) return argmax(scores, offset, this.vocab);
    const { vocab, scratch, weights } = this;
    const t = this.settings.temperature;
    let max = -Infinity;
    for (let v = 0; v < vocab; v++) {
      const x = Math.fround(scores[offset + v]! / t);
      scratch[v] = x;
      if (x > max) max = x;
    }
    const threshold = this.settings.topK > 0 && this.settings.topK < vocab ? kthLargest(scratch, this.settings.topK) : -Infinity;
    let total = 0;
    for (let v = 0; v < vocab; v++) {
      const x = scratch[v]!;
      const w = x >= threshold ? Math.exp(x - max) : 0;
      weights[v] = w;
      total += w;
    }
    const target = random.uniform() * total;
    let acc = 0;
    let last = 0;
    for (let v = 0; v < vocab; v++) {
      if (weights[v] === 0) continue;
      acc += weights[v]!;
      last = v;
      if (target < acc) return v;
    }
    return last; // rounding left the target at the very end
  }
}

/** The k-th largest value (k ≥ 1) of `values`, which is left as it was. */
function kthLargest(values: Float32Array, k: number): number {
  const sorted = Float32Array.from(values).sort();
  return sorted[values.length - k]!;
}
