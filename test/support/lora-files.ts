/**
 * LoRA adapters written the ways trainers write them, with seeded random matrices, for tests:
 * kohya (`.lora_down.weight`, `.lora_up.weight`, `.alpha`), PEFT (`.lora_A.weight`,
 * `.lora_B.weight`, `.alpha`), diffusers' older `.lora.down.weight` / `.lora.up.weight` and XLabs
 * (`.down.weight`, `.up.weight`, no alpha), each module
 * under the key stem given (`lora_unet_conv_in`, `transformer.x_embedder`, …).
 */
import { type TensorToWrite, writeSafetensors } from '../../src/models/safetensors.js';
import { SeededRandom } from '../../src/pipelines/random.js';

export interface ModuleSpec {
  out: number;
  /** Input features, or [in, kh, kw] for a convolution. */
  in: number[];
  rank: number;
  alpha?: number;
  dtype?: 'F32' | 'F16';
  /** Standard deviation of the random entries; 0.5 by default. */
  scale?: number;
}

const SUFFIXES = {
  kohya: ['lora_down.weight', 'lora_up.weight'],
  peft: ['lora_A.weight', 'lora_B.weight'],
  diffusers: ['lora.down.weight', 'lora.up.weight'],
  xlabs: ['down.weight', 'up.weight'],
} as const;

export function loraFile(format: keyof typeof SUFFIXES, modules: Record<string, ModuleSpec>, options: { seed?: number; metadata?: Record<string, string> } = {}): Uint8Array {
  const rng = new SeededRandom(options.seed ?? 1, 77);
  const tensors: Record<string, TensorToWrite> = {};
  const [down, up] = SUFFIXES[format];
  for (const [stem, m] of Object.entries(modules)) {
    const inner = m.in.reduce((a, b) => a * b, 1);
    const dtype = m.dtype ?? 'F32';
    const scale = m.scale ?? 0.5;
    tensors[`${stem}.${down}`] = { dtype, shape: [m.rank, ...m.in], data: rng.normals(m.rank * inner, scale) };
    tensors[`${stem}.${up}`] = { dtype, shape: m.in.length > 1 ? [m.out, m.rank, 1, 1] : [m.out, m.rank], data: rng.normals(m.out * m.rank, scale) };
    if (m.alpha !== undefined && format !== 'xlabs') tensors[`${stem}.alpha`] = { dtype: 'F32', shape: [], data: Float32Array.of(m.alpha) };
  }
  return writeSafetensors(tensors, options.metadata);
}
