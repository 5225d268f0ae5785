import { builtinLoraTargets } from '../../pipelines/builtin/model-files.js';
import { SeededRandom } from '../../pipelines/random.js';
import { type TensorToWrite, writeSafetensors } from '../../models/safetensors.js';
import type { ModuleMatrices } from './denoiser-backprop.js';
import { LORA_MODULES, type LoraModuleName } from './denoiser-weights.js';

/**
 * The LoRA being trained: for every patched module a down matrix A [rank, in] and an up matrix
 * B [out, rank], so that its weight is W + (alpha / rank) · B · A. All values live in one
 * float32 vector (A then B, module after module), which the optimiser updates and checkpoints
 * store as they are; arithmetic on them is done in double precision.
 *
 * Initialised as PEFT does: A uniform in ±1/√in (Kaiming-uniform with a = √5), B zero, so
 * training starts from the base model exactly.
 */
export class LoraParameters {
  readonly values: Float32Array;
  readonly scale: number;
  private readonly layout: { module: LoraModuleName; out: number; inner: number; down: number; up: number }[] = [];

  constructor(
    readonly rank: number,
    readonly alpha: number,
    values?: Float32Array,
  ) {
    let offset = 0;
    for (const module of LORA_MODULES) {
      const [out, inner] = builtinLoraTargets[module]!;
      this.layout.push({ module, out, inner, down: offset, up: offset + rank * inner });
      offset += rank * (inner + out);
    }
    if (values && values.length !== offset) throw new RangeError(`${values.length} LoRA values for ${offset} parameters of rank ${rank}`);
    this.values = values ?? new Float32Array(offset);
    this.scale = alpha / rank;
  }

  static initial(rank: number, alpha: number, seed: number): LoraParameters {
    const params = new LoraParameters(rank, alpha);
    const rng = new SeededRandom(seed, 0);
    for (const m of params.layout) {
      const bound = 1 / Math.sqrt(m.inner);
      for (let i = 0; i < rank * m.inner; i++) params.values[m.down + i] = (2 * rng.uniform() - 1) * bound;
    }
    return params;
  }

  /** Each module's weight as the adapter makes it: base + scale · B · A. */
  patched(base: ModuleMatrices): ModuleMatrices {
    const out = {} as ModuleMatrices;
    for (const m of this.layout) {
      const w = Float64Array.from(base[m.module]);
      const { down, up } = this.views(m);
      for (let o = 0; o < m.out; o++) {
        for (let k = 0; k < this.rank; k++) {
          const c = this.scale * up[o * this.rank + k]!;
          if (c === 0) continue;
          for (let i = 0; i < m.inner; i++) w[o * m.inner + i]! += c * down[k * m.inner + i]!;
        }
      }
      out[m.module] = w;
    }
    return out;
  }

  /** The gradient of every value from the gradients of the patched weights: dA = s·Bᵀ·dW, dB = s·dW·Aᵀ. */
  gradients(weightGradients: ModuleMatrices): Float64Array {
    const g = new Float64Array(this.values.length);
    const r = this.rank;
    for (const m of this.layout) {
      const dW = weightGradients[m.module];
      const { down, up } = this.views(m);
      for (let o = 0; o < m.out; o++) {
        for (let k = 0; k < r; k++) {
          const b = up[o * r + k]!;
          let dB = 0;
          for (let i = 0; i < m.inner; i++) {
            const d = dW[o * m.inner + i]!;
            dB += d * down[k * m.inner + i]!;
            g[m.down + k * m.inner + i]! += this.scale * b * d;
          }
          g[m.up + o * r + k] = this.scale * dB;
        }
      }
    }
    return g;
  }

  /** The adapter file, in Kiln's key format for the built-in model (see lora-adapter.ts). */
  toSafetensors(metadata: Record<string, string>): Uint8Array {
    const tensors: Record<string, TensorToWrite> = {};
    for (const m of this.layout) {
      const { down, up } = this.views(m);
      tensors[`denoiser.${m.module}.lora_A.weight`] = { dtype: 'F32', shape: [this.rank, m.inner], data: down };
      tensors[`denoiser.${m.module}.lora_B.weight`] = { dtype: 'F32', shape: [m.out, this.rank], data: up };
      tensors[`denoiser.${m.module}.alpha`] = { dtype: 'F32', shape: [], data: Float32Array.of(this.alpha) };
    }
    return writeSafetensors(tensors, metadata);
  }

  private views(m: LoraParameters['layout'][number]) {
    return {
      down: this.values.subarray(m.down, m.down + this.rank * m.inner),
      up: this.values.subarray(m.up, m.up + m.out * this.rank),
    };
  }
}
