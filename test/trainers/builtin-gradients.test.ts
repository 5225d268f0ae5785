import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { parseLoraAdapter } from '../../src/models/lora-adapter.js';
import { mergeLora } from '../../src/models/lora-merge.js';
import { BUILTIN_FILES, buildBuiltinModel } from '../../src/pipelines/builtin/model-files.js';
import { pixelCoordinates } from '../../src/pipelines/builtin/pipeline.js';
import { SeededRandom } from '../../src/pipelines/random.js';
import { AdamW } from '../../src/trainers/builtin/adamw.js';
import { type DenoisingExample, denoisingPass, type ModuleMatrices } from '../../src/trainers/builtin/denoiser-backprop.js';
import { LORA_MODULES, loraBaseWeights, readDenoiserWeights } from '../../src/trainers/builtin/denoiser-weights.js';
import { LoraParameters } from '../../src/trainers/builtin/lora-parameters.js';

const denoiserBytes = buildBuiltinModel().find((f) => f.path === BUILTIN_FILES.denoiser)!.bytes;
const base = readDenoiserWeights(denoiserBytes);
const W = 6;
const H = 5;
const coords = Float64Array.from(pixelCoordinates(W, H));

/** Examples with random clean images, noise levels, states and conditioning. */
function examples(count: number, seed: number): DenoisingExample[] {
  const rng = new SeededRandom(seed, 9);
  return Array.from({ length: count }, () => {
    const target = Float32Array.from(rng.normals(W * H * 3, 0.5), (v) => Math.tanh(v));
    const state = Float64Array.from(rng.normals(W * H * 3));
    return { target, state, cond: Float64Array.from(rng.normals(base.condWidth)), noiseLevel: rng.uniform() };
  });
}

/** A LoRA with every matrix non-zero, so that the gradients of A and of B both matter. */
function randomLora(rank: number, alpha: number, seed: number): LoraParameters {
  const p = LoraParameters.initial(rank, alpha, seed);
  const rng = new SeededRandom(seed, 7);
  for (let i = 0; i < p.values.length; i++) p.values[i] = rng.normal() * 0.3;
  return p;
}

async function onnxEstimates(graph: Uint8Array, ex: DenoisingExample): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(graph);
  try {
    const out = await session.run({
      coords: new ort.Tensor('float32', Float32Array.from(coords), [1, W * H, 3]),
      state: new ort.Tensor('float32', Float32Array.from(ex.state), [1, W * H, 3]),
      cond: new ort.Tensor('float32', Float32Array.from(ex.cond), [1, 1, base.condWidth]),
      noise_level: new ort.Tensor('float32', Float32Array.of(ex.noiseLevel), [1, 1, 1]),
      // With mix 1 the graph's output is its clean-image estimate itself.
      mix: new ort.Tensor('float32', Float32Array.of(1), [1, 1, 1]),
    });
    return out.next_state!.data as Float32Array;
  } finally {
    await session.release();
  }
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('the built-in trainer’s own forward and backward passes', () => {
  it('computes the same estimate as the ONNX graph, with and without a merged LoRA', async () => {
    const [ex] = examples(1, 1);
    const mine = [new Float64Array(W * H * 3)];
    denoisingPass(base, loraBaseWeights(base), coords, [ex!], { gradients: false, estimates: mine });
    expect(maxAbsDiff(mine[0]!, await onnxEstimates(denoiserBytes, ex!))).toBeLessThan(2e-6);

    // The LoRA as Kiln's merge applies it: same scaling, same A/B layout.
    const lora = randomLora(3, 5, 2);
    const merged = mergeLora(denoiserBytes, parseLoraAdapter(lora.toSafetensors({})), 1, { component: 'denoiser' }).bytes;
    denoisingPass(base, lora.patched(loraBaseWeights(base)), coords, [ex!], { gradients: false, estimates: mine });
    const onnx = await onnxEstimates(merged, ex!);
    expect(maxAbsDiff(mine[0]!, onnx)).toBeLessThan(2e-5);
    expect(maxAbsDiff(onnx, await onnxEstimates(denoiserBytes, ex!))).toBeGreaterThan(0.05);
  });

  it('has weight gradients that match central finite differences', () => {
    const batch = examples(2, 3);
    const weights = randomLora(2, 2, 4).patched(loraBaseWeights(base));
    const { gradients } = denoisingPass(base, weights, coords, batch, { gradients: true });
    const rng = new SeededRandom(5, 0);
    const h = 1e-5;
    for (const module of LORA_MODULES) {
      const w = weights[module];
      for (let probe = 0; probe < 12; probe++) {
        const i = Math.floor(rng.uniform() * w.length);
        const at = (delta: number): number => {
          const moved: ModuleMatrices = { ...weights, [module]: Float64Array.from(w, (v, j) => (j === i ? v + delta : v)) };
          return denoisingPass(base, moved, coords, batch, { gradients: false }).loss;
        };
        const numeric = (at(h) - at(-h)) / (2 * h);
        const analytic = gradients![module][i]!;
        expect(Math.abs(analytic - numeric), `${module}[${i}]: ${analytic} vs ${numeric}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(numeric)) + 1e-9);
      }
    }
  });

  it('has LoRA A and B gradients that match central finite differences through alpha/rank scaling', () => {
    const batch = examples(2, 6);
    const lora = randomLora(3, 1.5, 7);
    const baseMatrices = loraBaseWeights(base);
    const { gradients } = denoisingPass(base, lora.patched(baseMatrices), coords, batch, { gradients: true });
    const analytic = lora.gradients(gradients!);
    const rng = new SeededRandom(8, 0);
    for (let probe = 0; probe < 60; probe++) {
      const i = Math.floor(rng.uniform() * lora.values.length);
      const original = lora.values[i]!;
      const lossAt = (value: number) => {
        lora.values[i] = value;
        const actual = lora.values[i]!;
        return [denoisingPass(base, lora.patched(baseMatrices), coords, batch, { gradients: false }).loss, actual] as const;
      };
      const [up, upValue] = lossAt(original + 1e-3);
      const [down, downValue] = lossAt(original - 1e-3);
      lora.values[i] = original;
      const numeric = (up - down) / (upValue - downValue);
      expect(Math.abs(analytic[i]! - numeric), `value ${i}: ${analytic[i]} vs ${numeric}`).toBeLessThan(1e-4 * Math.max(1e-3, Math.abs(numeric)) + 1e-8);
    }
  });

  it('steps AdamW as PyTorch does: the first update moves every parameter with a gradient by the learning rate', () => {
    const params = Float32Array.of(1, -2, 0.5);
    const opt = new AdamW(3, { learningRate: 0.1, weightDecay: 0 });
    opt.update(params, Float64Array.of(3, -0.001, 0));
    // m̂ / √v̂ is sign(g) on the first step (up to ε = 1e-8 beside √v̂).
    expect(params[0]).toBeCloseTo(0.9, 6);
    expect(params[1]).toBeCloseTo(-1.9, 5);
    expect(params[2]).toBe(0.5);
    const decayed = Float32Array.of(1);
    new AdamW(1, { learningRate: 0.1, weightDecay: 0.5 }).update(decayed, Float64Array.of(0));
    expect(decayed[0]).toBeCloseTo(0.95, 7);
  });
});
