import { allSchedulers } from '../pipelines/catalog.js';
import { builder } from './builder.js';

/** The diffusion samplers Kiln implements (as diffusers computes them), over every pipeline. */
export const SchedulerEnum = builder.enumType('Scheduler', {
  description: 'A diffusion sampler; which ones a model offers is in its capabilities.',
  values: Object.fromEntries(allSchedulers().map((name) => [name.toUpperCase(), { value: name }])),
});
