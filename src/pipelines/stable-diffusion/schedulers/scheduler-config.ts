/**
 * A model's `scheduler_config.json`, resolved for the scheduler that will run it, the way
 * diffusers' `SchedulerClass.from_config(config)` does: each setting the chosen scheduler takes
 * comes from the file when the file has it, otherwise from that scheduler's own default (the
 * defaults below are those of diffusers' constructors).
 *
 * One exception, `timestep_spacing`: older configs (SD 1.x, SD 2.x on the Hub) do not state
 * it, so diffusers gives each scheduler its own default spacing (Euler spaces SD 1.5's steps
 * `linspace`, DDIM and PNDM `leading`); newer diffusers versions write the default into every
 * file they save, Optimum exports included, which would make a switched-to scheduler inherit it.
 * Kiln reads a spacing equal to the file's own class default as unstated, so SD 1.5 gives the
 * schedules diffusers gives; a deliberate choice (SD-Turbo's `trailing` for Euler) is kept.
 */

export const SCHEDULER_NAMES = ['euler', 'euler_ancestral', 'ddim', 'lcm', 'pndm'] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

export const isSchedulerName = (name: string): name is SchedulerName => (SCHEDULER_NAMES as readonly string[]).includes(name);

export const SCHEDULER_CLASSES: Record<SchedulerName, string> = {
  euler: 'EulerDiscreteScheduler',
  euler_ancestral: 'EulerAncestralDiscreteScheduler',
  ddim: 'DDIMScheduler',
  lcm: 'LCMScheduler',
  pndm: 'PNDMScheduler',
};

/** Default `timestep_spacing` of diffusers scheduler classes that model configs name. */
const CLASS_SPACING: Record<string, TimestepSpacing> = {
  EulerDiscreteScheduler: 'linspace',
  EulerAncestralDiscreteScheduler: 'linspace',
  DDIMScheduler: 'leading',
  LCMScheduler: 'leading',
  PNDMScheduler: 'leading',
  DDPMScheduler: 'leading',
  DPMSolverMultistepScheduler: 'linspace',
  DPMSolverSinglestepScheduler: 'linspace',
  LMSDiscreteScheduler: 'linspace',
  HeunDiscreteScheduler: 'linspace',
  KDPM2DiscreteScheduler: 'linspace',
  KDPM2AncestralDiscreteScheduler: 'linspace',
  UniPCMultistepScheduler: 'linspace',
  DEISMultistepScheduler: 'linspace',
};

export type TimestepSpacing = 'linspace' | 'leading' | 'trailing';
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';

export interface SchedulerConfig {
  name: SchedulerName;
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: 'linear' | 'scaled_linear';
  trainedBetas: number[] | null;
  predictionType: PredictionType;
  timestepSpacing: TimestepSpacing;
  stepsOffset: number;
  /** DDIM, LCM, PNDM: the alpha product past the last step (1, or that of timestep 0). */
  setAlphaToOne: boolean;
  /** DDIM, LCM: clamp the predicted clean sample to ±clipSampleRange. */
  clipSample: boolean;
  clipSampleRange: number;
  /** Euler: Karras et al.'s sigma spacing instead of the training schedule's. */
  useKarrasSigmas: boolean;
  sigmaMin: number | null;
  sigmaMax: number | null;
  /** Euler: the sigma after the last step, 0 or the schedule's smallest. */
  finalSigmasType: 'zero' | 'sigma_min';
  /** LCM: the distillation schedule its timesteps are taken from, and its boundary-condition scale. */
  originalInferenceSteps: number;
  timestepScaling: number;
}

/** A scheduler config Kiln cannot run; the message names the setting. */
export class SchedulerConfigError extends Error {
  override name = 'SchedulerConfigError';
}

type Raw = Record<string, unknown>;

const common = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
};

/** diffusers' constructor defaults of each scheduler, for the settings Kiln reads. */
const DEFAULTS: Record<SchedulerName, Raw> = {
  euler: {
    ...common,
    timestep_spacing: 'linspace',
    interpolation_type: 'linear',
    use_karras_sigmas: false,
    use_exponential_sigmas: false,
    use_beta_sigmas: false,
    sigma_min: null,
    sigma_max: null,
    timestep_type: 'discrete',
    final_sigmas_type: 'zero',
  },
  euler_ancestral: { ...common, timestep_spacing: 'linspace' },
  ddim: { ...common, timestep_spacing: 'leading', clip_sample: true, clip_sample_range: 1, set_alpha_to_one: true, thresholding: false },
  lcm: {
    ...common,
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    timestep_spacing: 'leading',
    original_inference_steps: 50,
    clip_sample: false,
    clip_sample_range: 1,
    set_alpha_to_one: true,
    thresholding: false,
    timestep_scaling: 10,
  },
  pndm: { ...common, timestep_spacing: 'leading', set_alpha_to_one: false, skip_prk_steps: false },
};

/** Kiln's scheduler for a diffusers class name: the same one, or Euler for classes Kiln does not implement. */
export function schedulerForClass(className: unknown): SchedulerName {
  const name = (Object.keys(SCHEDULER_CLASSES) as SchedulerName[]).find((n) => SCHEDULER_CLASSES[n] === className);
  return name ?? 'euler';
}

/** The settings `name` runs with under the model's config `file` (the parsed scheduler_config.json). */
export function resolveSchedulerConfig(file: Raw, name: SchedulerName): SchedulerConfig {
  const defaults = DEFAULTS[name];
  const get = (key: string): unknown => (key in file && key in defaults ? file[key] : defaults[key]);
  const num = (key: string) => {
    const v = get(key);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new SchedulerConfigError(`scheduler setting ${key} must be a number`);
    return v;
  };
  const nullableNum = (key: string) => (get(key) === null ? null : num(key));
  const bool = (key: string) => get(key) === true;
  const oneOf = <T extends string>(key: string, allowed: readonly T[]): T => {
    const v = get(key);
    if (!allowed.includes(v as T)) throw new SchedulerConfigError(`scheduler setting ${key}=${JSON.stringify(v)} is not supported (Kiln supports ${allowed.join(', ')})`);
    return v as T;
  };
  const refuse = (key: string, unsupported: unknown) => {
    if (key in defaults && get(key) === unsupported) throw new SchedulerConfigError(`scheduler setting ${key}=${JSON.stringify(unsupported)} is not supported by Kiln's ${name} scheduler`);
  };
  refuse('rescale_betas_zero_snr', true);
  refuse('thresholding', true);
  refuse('use_exponential_sigmas', true);
  refuse('use_beta_sigmas', true);
  refuse('timestep_type', 'continuous');
  refuse('interpolation_type', 'log_linear');
  // Kiln's PNDM is the PLMS form SD uses (skip_prk_steps), without the Runge–Kutta warm-up steps.
  if (name === 'pndm' && 'skip_prk_steps' in file && file.skip_prk_steps === false) {
    throw new SchedulerConfigError('scheduler setting skip_prk_steps=false is not supported by Kiln\'s pndm scheduler (it runs PLMS steps only)');
  }
  const trained = get('trained_betas');
  if (trained !== null && (!Array.isArray(trained) || !trained.every((b) => typeof b === 'number'))) {
    throw new SchedulerConfigError('scheduler setting trained_betas must be a list of numbers');
  }

  const sourceClass = file._class_name;
  const stated = file.timestep_spacing;
  const keepSpacing = stated !== undefined && (sourceClass === SCHEDULER_CLASSES[name] || typeof sourceClass !== 'string' || stated !== CLASS_SPACING[sourceClass]);
  const spacing = keepSpacing ? stated : defaults.timestep_spacing;
  if (spacing !== 'linspace' && spacing !== 'leading' && spacing !== 'trailing') {
    throw new SchedulerConfigError(`scheduler setting timestep_spacing=${JSON.stringify(spacing)} is not supported (Kiln supports linspace, leading, trailing)`);
  }

  const config: SchedulerConfig = {
    name,
    numTrainTimesteps: num('num_train_timesteps'),
    betaStart: num('beta_start'),
    betaEnd: num('beta_end'),
    betaSchedule: trained === null ? oneOf('beta_schedule', ['linear', 'scaled_linear'] as const) : 'linear',
    trainedBetas: trained as number[] | null,
    // diffusers' Euler ancestral and PNDM have no `sample` prediction.
    predictionType: oneOf('prediction_type', name === 'euler_ancestral' || name === 'pndm' ? (['epsilon', 'v_prediction'] as const) : (['epsilon', 'v_prediction', 'sample'] as const)),
    timestepSpacing: spacing,
    stepsOffset: num('steps_offset'),
    setAlphaToOne: bool('set_alpha_to_one'),
    clipSample: bool('clip_sample'),
    clipSampleRange: 'clip_sample_range' in defaults ? num('clip_sample_range') : 1,
    useKarrasSigmas: bool('use_karras_sigmas'),
    sigmaMin: 'sigma_min' in defaults ? nullableNum('sigma_min') : null,
    sigmaMax: 'sigma_max' in defaults ? nullableNum('sigma_max') : null,
    finalSigmasType: 'final_sigmas_type' in defaults ? oneOf('final_sigmas_type', ['zero', 'sigma_min'] as const) : 'zero',
    originalInferenceSteps: 'original_inference_steps' in defaults ? num('original_inference_steps') : 50,
    timestepScaling: 'timestep_scaling' in defaults ? num('timestep_scaling') : 10,
  };
  if (!Number.isInteger(config.numTrainTimesteps) || config.numTrainTimesteps < 2) throw new SchedulerConfigError('scheduler setting num_train_timesteps must be a whole number of at least 2');
  if (config.trainedBetas && config.trainedBetas.length !== config.numTrainTimesteps) throw new SchedulerConfigError('scheduler setting trained_betas must have num_train_timesteps values');
  return config;
}
