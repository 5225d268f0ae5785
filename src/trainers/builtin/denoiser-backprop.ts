import type { DenoiserWeights, LoraModuleName } from './denoiser-weights.js';

/**
 * The built-in denoiser's clean-image estimate and its reverse-mode gradients, written out by
 * hand for its layers (model-files.ts has the graph):
 *
 *   phase = tanh(Wc·u + bc)            u = prompt ‖ style, one per image
 *   freq  = fb + fs·tanh(Wf·u + bf)
 *   z     = (W1·xy)⊙freq + Ws·state + π·phase + t·wt     per pixel
 *   h1 = sin z,  h2 = tanh(W2·h1 + b2),  h3 = tanh(W3·h2 + b3),  estimate = tanh(Wr·h3 + br)
 *
 * The loss is the mean squared error between the estimate and the clean image over every image,
 * pixel and channel; gradients are taken with respect to the weights LoRA patches (cond,
 * layer1, layer2, layer3, to_rgb), whose current values (base + LoRA delta) are passed in.
 */

/** One training image at one noise level. */
export interface DenoisingExample {
  /** The clean image, [pixels × 3] in [-1, 1]. */
  target: Float32Array;
  /** What the denoiser sees: noise level t of the way from the clean image to noise, [pixels × 3]. */
  state: Float64Array;
  /** prompt ‖ style, [condWidth]. */
  cond: Float64Array;
  noiseLevel: number;
}

export type ModuleMatrices = Record<LoraModuleName, Float64Array>;

export interface DenoisingPass {
  loss: number;
  /** d loss / d weight for each LoRA module's weight, [out, in]; null when not asked for. */
  gradients: ModuleMatrices | null;
}

export interface DenoisingOptions {
  gradients: boolean;
  /** Receives each example's estimate, [pixels × 3], when given. */
  estimates?: Float64Array[];
}

export function denoisingPass(
  base: DenoiserWeights,
  weights: ModuleMatrices,
  coords: Float64Array,
  examples: DenoisingExample[],
  options: DenoisingOptions,
): DenoisingPass {
  const h = base.hidden;
  const cw = base.condWidth;
  const pixels = coords.length / 3;
  const { cond: Wc, layer1: W1, layer2: W2, layer3: W3, to_rgb: Wr } = weights;
  const { stateIn: Ws, layer2Bias: b2, layer3Bias: b3, toRgbBias: br, phaseScale } = base;
  const grad = options.gradients;
  const gWc = new Float64Array(h * cw);
  const gW1 = new Float64Array(h * 3);
  const gW2 = new Float64Array(h * h);
  const gW3 = new Float64Array(h * h);
  const gWr = new Float64Array(3 * h);

  const phase = new Float64Array(h);
  const freq = new Float64Array(h);
  const shift = new Float64Array(h);
  const phaseGrad = new Float64Array(h);
  const h1 = new Float64Array(h);
  const cos1 = new Float64Array(h);
  const h2 = new Float64Array(h);
  const h3 = new Float64Array(h);
  const g2 = new Float64Array(h);
  const g3 = new Float64Array(h);
  const gh1 = new Float64Array(h);
  const gh2 = new Float64Array(h);
  const gh3 = new Float64Array(h);
  const g4 = new Float64Array(3);
  const n = examples.length * pixels * 3;
  let sse = 0;

  for (const [e, ex] of examples.entries()) {
    const u = ex.cond;
    for (let j = 0; j < h; j++) {
      let ac = base.condBias[j]!;
      let af = base.condFreqBias[j]!;
      for (let i = 0; i < cw; i++) {
        ac += Wc[j * cw + i]! * u[i]!;
        af += base.condFreq[j * cw + i]! * u[i]!;
      }
      phase[j] = Math.tanh(ac);
      freq[j] = base.freqBase + base.freqSpan * Math.tanh(af);
      shift[j] = phaseScale * phase[j]! + ex.noiseLevel * base.time[j]!;
    }
    phaseGrad.fill(0);
    const out = options.estimates?.[e];
    for (let p = 0; p < pixels; p++) {
      const cx = coords[3 * p]!;
      const cy = coords[3 * p + 1]!;
      const cr = coords[3 * p + 2]!;
      const sx = ex.state[3 * p]!;
      const sy = ex.state[3 * p + 1]!;
      const sz = ex.state[3 * p + 2]!;
      for (let j = 0; j < h; j++) {
        const z = freq[j]! * (W1[3 * j]! * cx + W1[3 * j + 1]! * cy + W1[3 * j + 2]! * cr) + Ws[3 * j]! * sx + Ws[3 * j + 1]! * sy + Ws[3 * j + 2]! * sz + shift[j]!;
        h1[j] = Math.sin(z);
        cos1[j] = Math.cos(z);
      }
      denseTanh(W2, b2, h1, h2, h);
      denseTanh(W3, b3, h2, h3, h);
      for (let c = 0; c < 3; c++) {
        let a = br[c]!;
        for (let i = 0; i < h; i++) a += Wr[c * h + i]! * h3[i]!;
        const est = Math.tanh(a);
        if (out) out[3 * p + c] = est;
        const d = est - ex.target[3 * p + c]!;
        sse += d * d;
        g4[c] = ((2 * d) / n) * (1 - est * est);
      }
      if (!grad) continue;

      gh3.fill(0);
      for (let c = 0; c < 3; c++) {
        const g = g4[c]!;
        for (let i = 0; i < h; i++) {
          gWr[c * h + i]! += g * h3[i]!;
          gh3[i]! += Wr[c * h + i]! * g;
        }
      }
      for (let i = 0; i < h; i++) g3[i] = gh3[i]! * (1 - h3[i]! * h3[i]!);
      denseBackward(W3, g3, h2, gW3, gh2, h);
      for (let i = 0; i < h; i++) g2[i] = gh2[i]! * (1 - h2[i]! * h2[i]!);
      denseBackward(W2, g2, h1, gW2, gh1, h);
      for (let j = 0; j < h; j++) {
        const gz = gh1[j]! * cos1[j]!;
        phaseGrad[j]! += gz;
        const gzf = gz * freq[j]!;
        gW1[3 * j]! += gzf * cx;
        gW1[3 * j + 1]! += gzf * cy;
        gW1[3 * j + 2]! += gzf * cr;
      }
    }
    if (!grad) continue;
    for (let j = 0; j < h; j++) {
      const g = phaseScale * phaseGrad[j]! * (1 - phase[j]! * phase[j]!);
      for (let i = 0; i < cw; i++) gWc[j * cw + i]! += g * u[i]!;
    }
  }
  return { loss: sse / n, gradients: grad ? { cond: gWc, layer1: gW1, layer2: gW2, layer3: gW3, to_rgb: gWr } : null };
}

/** y = tanh(W·x + b) for a square W. */
function denseTanh(W: Float64Array, b: Float64Array, x: Float64Array, y: Float64Array, h: number) {
  for (let j = 0; j < h; j++) {
    let a = b[j]!;
    const row = j * h;
    for (let i = 0; i < h; i++) a += W[row + i]! * x[i]!;
    y[j] = Math.tanh(a);
  }
}

/** gW += g ⊗ x and gx = Wᵀ·g, for a square W. */
function denseBackward(W: Float64Array, g: Float64Array, x: Float64Array, gW: Float64Array, gx: Float64Array, h: number) {
  gx.fill(0);
  for (let j = 0; j < h; j++) {
    const gj = g[j]!;
    const row = j * h;
    for (let i = 0; i < h; i++) {
      gW[row + i]! += gj * x[i]!;
      gx[i]! += W[row + i]! * gj;
    }
  }
}
