import { z } from 'zod';
import { type JobOptions, jobOptions } from './job-options.js';
import type { KindDefinition } from './kind.js';

/**
 * What a client sends to submit a job of a kind: the kind's parameters, every one optional but
 * those it requires, and the options every job takes. The API's input type is printed from it,
 * and checks inputs against it.
 */
export function inputSchemaOf(kind: KindDefinition): z.ZodObject {
  const shape = Object.fromEntries(Object.entries(kind.params.shape).map(([name, schema]) => [name, kind.required.includes(name) ? schema : (schema as z.ZodType).nullish()]));
  return z.object({ ...shape, ...jobOptions.shape });
}

/** A validated input, split into the kind's parameters and the job's options. */
export function splitInput(input: Record<string, unknown>): { params: Record<string, unknown>; options: JobOptions } {
  const isOption = (key: string) => key in jobOptions.shape;
  return {
    params: Object.fromEntries(Object.entries(input).filter(([key]) => !isOption(key))),
    options: Object.fromEntries(Object.entries(input).filter(([key]) => isOption(key))) as JobOptions,
  };
}
