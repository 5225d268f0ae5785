import { BUILTIN, BUILTIN_FILES, buildBuiltinModel, builtinLoraTargets } from '../pipelines/builtin/model-files.js';
import { SeededRandom } from '../pipelines/random.js';
import { inspectOnnx } from './onnx-model.js';
import { type TensorToWrite, writeSafetensors } from './safetensors.js';

export interface BuiltinLoraOptions {
  /** Rank of every module's low-rank update; 4 by default. */
  rank?: number;
  /** Seeds the random matrices: the same seed gives the same file. */
  seed?: number;
  /** How large each update is relative to the weight it patches (its standard deviation): 1 by default. */
  strength?: number;
}

/**
 * Makes a LoRA for the built-in denoiser, in Kiln's key format (`denoiser.<module>.lora_A.weight`
 * [rank, in], `.lora_B.weight` [out, rank], `.alpha`), with random matrices scaled so that at
 * weight 1 each update is as large as the weight it patches times `strength`: its effect on
 * images is plain to see.
 */
export function makeBuiltinLora(options: BuiltinLoraOptions = {}): Uint8Array {
  const { rank = 4, seed = 1, strength = 1 } = options;
  if (!Number.isInteger(rank) || rank < 1) throw new RangeError(`rank ${rank} is not a positive integer`);
  const spread = baseWeightSpread();
  const rng = new SeededRandom(seed, 0x6c6f7261);
  const alpha = 1;
  const tensors: Record<string, TensorToWrite> = {};
  for (const [module, [out, inner]] of Object.entries(builtinLoraTargets)) {
    // down ~ N(0, 1), up ~ N(0, c²): each entry of (alpha / rank) · up · down has standard
    // deviation c · alpha / √rank, which should equal strength × the base weight's.
    const c = (strength * spread.get(module)! * Math.sqrt(rank)) / alpha;
    tensors[`denoiser.${module}.lora_A.weight`] = { dtype: 'F32', shape: [rank, inner], data: rng.normals(rank * inner) };
    tensors[`denoiser.${module}.lora_B.weight`] = { dtype: 'F32', shape: [out, rank], data: rng.normals(out * rank, c) };
    tensors[`denoiser.${module}.alpha`] = { dtype: 'F32', shape: [], data: Float32Array.of(alpha) };
  }
  return writeSafetensors(tensors, {
    'kiln.pipeline': 'builtin',
    'kiln.builtin_version': String(BUILTIN.version),
    'kiln.rank': String(rank),
    'kiln.seed': String(seed),
    'kiln.strength': String(strength),
  });
}

/** The standard deviation of each LoRA target's weights in the built-in denoiser. */
function baseWeightSpread(): Map<string, number> {
  const denoiser = buildBuiltinModel().find((f) => f.path === BUILTIN_FILES.denoiser)!.bytes;
  const spread = new Map<string, number>();
  for (const t of inspectOnnx(denoiser).initializers) {
    const module = t.name.replace(/\.weight$/, '');
    if (!Object.hasOwn(builtinLoraTargets, module) || t.data.kind !== 'raw') continue;
    const values = new Float32Array(denoiser.slice(t.data.start, t.data.end).buffer);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    spread.set(module, Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length));
  }
  return spread;
}
