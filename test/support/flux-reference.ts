/**
 * Reads ../shared/fixtures/flux-tiny-reference (diffusers' own FluxPipeline runs on flux-tiny,
 * see flux-sdxl.README.md): schedules, and each case's inputs, per-step tensors and image.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FLUX_REFERENCE } from './flux-fixtures.js';

export interface TensorFile {
  file: string;
  shape: number[];
}

export interface ScheduleEntry {
  image_seq_len: number;
  num_inference_steps: number;
  mu: number;
  mu_used: boolean;
  timesteps: number[];
  sigmas: number[];
}

export interface StepReference {
  index: number;
  t: number;
  sigma: number;
  sigma_next: number;
  transformer_timestep_input: number[];
  guidance_input: number[] | null;
  hidden_states_in: TensorFile;
  noise_pred: TensorFile;
  latents_out: TensorFile;
}

export interface CaseReference {
  name: string;
  dir: string;
  height: number;
  width: number;
  num_inference_steps: number;
  guidance_scale: number;
  txt_len: number;
  latent_hw: [number, number];
  packed_seq_len: number;
  mu: number;
  timesteps: number[];
  sigmas: number[];
  files: Record<string, TensorFile>;
  steps: StepReference[];
}

export interface FluxReference {
  schedules: Record<'dev' | 'schnell', { scheduler_config: Record<string, unknown>; entries: ScheduleEntry[] }>;
  cases: CaseReference[];
}

export const hasFluxReference = () => fs.existsSync(path.join(FLUX_REFERENCE, 'reference.json'));

export const readFluxReference = (): FluxReference => JSON.parse(fs.readFileSync(path.join(FLUX_REFERENCE, 'reference.json'), 'utf8')) as FluxReference;

/** A case's tensor file as float32 values. */
export function caseTensor(c: CaseReference, file: TensorFile | string): Float32Array {
  const bytes = fs.readFileSync(path.join(FLUX_REFERENCE, c.dir, typeof file === 'string' ? file : file.file));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

export const maxDifference = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
};

/** PSNR of two pictures with values in [0, 1]. */
export function psnr(a: Float32Array, b: Float32Array): number {
  let squared = 0;
  for (let i = 0; i < a.length; i++) squared += (a[i]! - b[i]!) ** 2;
  return 10 * Math.log10(1 / (squared / a.length));
}
