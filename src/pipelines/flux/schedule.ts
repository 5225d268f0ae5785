/**
 * diffusers' FlowMatchEulerDiscreteScheduler as FluxPipeline sets it up: σ = linspace(1, 1/N, N),
 * shifted either by the image's resolution (FLUX.1-dev: `use_dynamic_shifting`, with
 * mu = calculate_shift(packed sequence length)) or by the config's static `shift` (FLUX.1-schnell:
 * shift 1, no change), optionally stretched to `shift_terminal`; timesteps are σ · 1000 and the
 * σ list ends with 0. An Euler step moves the latents by (σ_next − σ) · velocity.
 *
 * diffusers computes the shift in float32 (numpy arrays of float32 with Python scalars), so
 * every operation here is rounded to float32 as it is there, and the schedules agree to the bit.
 */

/** The scheduler's name in requests and declarations: FLUX.1 runs this one only. */
export const FLOW_MATCH_EULER = 'flow_match_euler';

export interface FlowMatchConfig {
  numTrainTimesteps: number;
  shift: number;
  useDynamicShifting: boolean;
  baseShift: number;
  maxShift: number;
  baseImageSeqLen: number;
  maxImageSeqLen: number;
  shiftTerminal: number | null;
  timeShiftType: 'exponential' | 'linear';
}

export interface FlowMatchSchedule {
  /** σ · 1000 for each step. */
  timesteps: Float32Array;
  /** One more than the steps; the last is 0. */
  sigmas: Float32Array;
  /** The resolution shift computed for the sequence length (used only with dynamic shifting). */
  mu: number;
}

export class FlowMatchConfigError extends Error {}

/** FLUX.1-dev's scheduler_config.json, for folders that carry none (the BFL layout). */
export const FLUX_DEV_SCHEDULER = {
  _class_name: 'FlowMatchEulerDiscreteScheduler',
  base_image_seq_len: 256,
  base_shift: 0.5,
  max_image_seq_len: 4096,
  max_shift: 1.15,
  num_train_timesteps: 1000,
  shift: 3.0,
  use_dynamic_shifting: true,
};

/** FLUX.1-schnell's. */
export const FLUX_SCHNELL_SCHEDULER = { ...FLUX_DEV_SCHEDULER, shift: 1.0, use_dynamic_shifting: false };

type Json = Record<string, unknown>;

/** Reads a scheduler_config.json with diffusers' defaults, refusing what Kiln does not implement. */
export function parseFlowMatchConfig(json: Json): FlowMatchConfig {
  const className = json._class_name;
  if (className !== undefined && className !== 'FlowMatchEulerDiscreteScheduler') {
    throw new FlowMatchConfigError(`${JSON.stringify(className)} is not FlowMatchEulerDiscreteScheduler, the scheduler FLUX.1 is made for`);
  }
  const number = (key: string, fallback: number, positive = false): number => {
    const v = json[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0)) throw new FlowMatchConfigError(`${key} must be a ${positive ? 'positive ' : ''}number`);
    return v;
  };
  for (const key of ['use_karras_sigmas', 'use_exponential_sigmas', 'use_beta_sigmas', 'invert_sigmas', 'stochastic_sampling']) {
    if (json[key] === true) throw new FlowMatchConfigError(`${key} is not supported by Kiln's flow-matching scheduler`);
  }
  const timeShiftType = json.time_shift_type ?? 'exponential';
  if (timeShiftType !== 'exponential' && timeShiftType !== 'linear') throw new FlowMatchConfigError('time_shift_type must be "exponential" or "linear"');
  const terminal = json.shift_terminal;
  if (terminal !== undefined && terminal !== null && (typeof terminal !== 'number' || !(terminal >= 0 && terminal < 1))) {
    throw new FlowMatchConfigError('shift_terminal must be a number in [0, 1)');
  }
  const config: FlowMatchConfig = {
    numTrainTimesteps: number('num_train_timesteps', 1000, true),
    shift: number('shift', 1, true),
    useDynamicShifting: json.use_dynamic_shifting === true,
    baseShift: number('base_shift', 0.5),
    maxShift: number('max_shift', 1.15),
    baseImageSeqLen: number('base_image_seq_len', 256, true),
    maxImageSeqLen: number('max_image_seq_len', 4096, true),
    // diffusers tests `if shift_terminal:`, so 0 means none.
    shiftTerminal: typeof terminal === 'number' && terminal !== 0 ? terminal : null,
    timeShiftType,
  };
  if (config.maxImageSeqLen === config.baseImageSeqLen) throw new FlowMatchConfigError('max_image_seq_len must differ from base_image_seq_len');
  return config;
}

/** FluxPipeline's calculate_shift: mu on the line through (base_seq_len, base_shift) and (max_seq_len, max_shift). */
export function calculateShift(imageSeqLen: number, config: FlowMatchConfig): number {
  const m = (config.maxShift - config.baseShift) / (config.maxImageSeqLen - config.baseImageSeqLen);
  const b = config.baseShift - m * config.baseImageSeqLen;
  return imageSeqLen * m + b;
}

const f = Math.fround;

/** The schedule of `steps` steps for latents packed into `imageSeqLen` tokens. */
export function flowMatchSchedule(config: FlowMatchConfig, steps: number, imageSeqLen: number): FlowMatchSchedule {
  if (!Number.isInteger(steps) || steps < 1) throw new FlowMatchConfigError('steps must be a whole number of at least 1');
  const mu = calculateShift(imageSeqLen, config);
  const sigmas = new Float32Array(steps + 1);
  // numpy's linspace(1, 1/steps, steps): start + i · step, with the last value exactly the stop.
  const stop = 1 / steps;
  const step = steps > 1 ? (stop - 1) / (steps - 1) : 0;
  for (let i = 0; i < steps; i++) sigmas[i] = i === steps - 1 ? stop : 1 + i * step;

  if (config.useDynamicShifting) {
    const scale = config.timeShiftType === 'exponential' ? f(Math.exp(mu)) : f(mu);
    for (let i = 0; i < steps; i++) sigmas[i] = f(scale / f(scale + f(f(1 / sigmas[i]!) - 1)));
  } else {
    const shift = f(config.shift);
    const shiftLess1 = f(config.shift - 1);
    for (let i = 0; i < steps; i++) sigmas[i] = f(f(shift * sigmas[i]!) / f(1 + f(shiftLess1 * sigmas[i]!)));
  }
  if (config.shiftTerminal !== null) {
    const scaleFactor = f(f(1 - sigmas[steps - 1]!) / f(1 - config.shiftTerminal));
    for (let i = 0; i < steps; i++) sigmas[i] = f(1 - f(f(1 - sigmas[i]!) / scaleFactor));
  }
  const timesteps = sigmas.slice(0, steps).map((s) => s * config.numTrainTimesteps);
  sigmas[steps] = 0;
  return { timesteps, sigmas, mu };
}

/** One Euler step: latents + (σ_next − σ) · velocity, in float32 as diffusers computes it. */
export function eulerStep(latents: Float32Array, velocity: Float32Array, sigma: number, sigmaNext: number): Float32Array {
  const dt = f(sigmaNext - sigma);
  const out = new Float32Array(latents.length);
  for (let i = 0; i < latents.length; i++) out[i] = latents[i]! + f(dt * velocity[i]!);
  return out;
}
