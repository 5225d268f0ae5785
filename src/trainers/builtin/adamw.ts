/**
 * AdamW (Loshchilov & Hutter), as PyTorch's `torch.optim.AdamW` computes it: decoupled weight
 * decay θ ← θ·(1 − lr·λ), then θ ← θ − lr · m̂ / (√v̂ + ε) with bias-corrected moments. The moments
 * are float32, like the parameters, so that a checkpoint holds the optimiser's exact state.
 */
export interface AdamWOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
}

export class AdamW {
  readonly m: Float32Array;
  readonly v: Float32Array;
  readonly learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;

  constructor(
    size: number,
    options: AdamWOptions,
    /** Updates taken so far: restored from a checkpoint with its moments. */
    public steps = 0,
    moments?: { m: Float32Array; v: Float32Array },
  ) {
    this.m = moments?.m ?? new Float32Array(size);
    this.v = moments?.v ?? new Float32Array(size);
    if (this.m.length !== size || this.v.length !== size) throw new RangeError(`AdamW moments of ${this.m.length} values for ${size} parameters`);
    this.learningRate = options.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
  }

  update(params: Float32Array, grads: Float64Array): void {
    this.steps++;
    const { beta1: b1, beta2: b2, learningRate: lr } = this;
    const c1 = 1 - b1 ** this.steps;
    const c2 = 1 - b2 ** this.steps;
    const decay = 1 - lr * this.weightDecay;
    for (let i = 0; i < params.length; i++) {
      const g = grads[i]!;
      const m = b1 * this.m[i]! + (1 - b1) * g;
      const v = b2 * this.v[i]! + (1 - b2) * g * g;
      this.m[i] = m;
      this.v[i] = v;
      params[i] = params[i]! * decay - (lr * (m / c1)) / (Math.sqrt(v / c2) + this.epsilon);
    }
  }
}
