import { SCHEDULER_NAMES, type SchedulerName } from '../pipelines/stable-diffusion/schedulers/scheduler-config.js';
import { builder } from './builder.js';

/** The diffusion samplers Kiln implements (as diffusers computes them). */
export const SchedulerEnum = builder.enumType('Scheduler', {
  values: Object.fromEntries(SCHEDULER_NAMES.map((name) => [name.toUpperCase(), { value: name }])) as Record<
    Uppercase<SchedulerName>,
    { value: SchedulerName }
  >,
});

