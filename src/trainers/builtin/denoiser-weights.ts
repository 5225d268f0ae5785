import { JobFailure } from '../../errors.js';
import { inspectOnnx, OnnxDataType } from '../../models/onnx-model.js';
import { BUILTIN, builtinLoraTargets } from '../../pipelines/builtin/model-files.js';

/**
 * The built-in denoiser's weights, read from its ONNX graph (model-files.ts builds it), in
 * double precision for the trainer's own forward and backward passes. Matrices are [out, in],
 * row-major, as the graph stores them.
 */
export interface DenoiserWeights {
  hidden: number;
  condWidth: number;
  cond: Float64Array;
  condBias: Float64Array;
  condFreq: Float64Array;
  condFreqBias: Float64Array;
  layer1: Float64Array;
  stateIn: Float64Array;
  time: Float64Array;
  layer2: Float64Array;
  layer2Bias: Float64Array;
  layer3: Float64Array;
  layer3Bias: Float64Array;
  toRgb: Float64Array;
  toRgbBias: Float64Array;
  freqBase: number;
  freqSpan: number;
  phaseScale: number;
}

/** The LoRA-patched modules, in the order adapters list them. */
export type LoraModuleName = keyof typeof builtinLoraTargets;
export const LORA_MODULES = Object.keys(builtinLoraTargets) as LoraModuleName[];

export function readDenoiserWeights(denoiser: Uint8Array): DenoiserWeights {
  const h = BUILTIN.hidden;
  const condWidth = BUILTIN.embed + BUILTIN.style;
  const tensors = new Map(inspectOnnx(denoiser).initializers.map((t) => [t.name, t]));
  const read = (name: string, size: number): Float64Array => {
    const t = tensors.get(name);
    if (!t || t.dataType !== OnnxDataType.FLOAT || t.data.kind !== 'raw' || t.data.end - t.data.start !== size * 4) {
      throw new JobFailure('MODEL_INVALID', `the built-in denoiser has no float32 weight ${name} of ${size} values`, false);
    }
    const bytes = denoiser.slice(t.data.start, t.data.end);
    return Float64Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, size));
  };
  return {
    hidden: h,
    condWidth,
    cond: read('cond.weight', h * condWidth),
    condBias: read('cond.bias', h),
    condFreq: read('cond_freq.weight', h * condWidth),
    condFreqBias: read('cond_freq.bias', h),
    layer1: read('layer1.weight', h * 3),
    stateIn: read('state_in.weight', h * 3),
    time: read('time.weight', h),
    layer2: read('layer2.weight', h * h),
    layer2Bias: read('layer2.bias', h),
    layer3: read('layer3.weight', h * h),
    layer3Bias: read('layer3.bias', h),
    toRgb: read('to_rgb.weight', 3 * h),
    toRgbBias: read('to_rgb.bias', 3),
    freqBase: read('freq_base', 1)[0]!,
    freqSpan: read('freq_span', 1)[0]!,
    phaseScale: read('phase_scale', 1)[0]!,
  };
}

/** The base weight of each LoRA module. */
export function loraBaseWeights(w: DenoiserWeights): Record<LoraModuleName, Float64Array> {
  return { cond: w.cond, layer1: w.layer1, layer2: w.layer2, layer3: w.layer3, to_rgb: w.toRgb };
}
