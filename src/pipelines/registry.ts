import { loadBuiltinPipeline } from './builtin/pipeline.js';
import type { LoadedPipeline, LoadOptions } from './pipeline.js';
import { loadStableDiffusionPipeline } from './stable-diffusion/pipeline.js';

const loaders: Record<string, (dir: string, options: LoadOptions) => Promise<LoadedPipeline>> = {
  builtin: loadBuiltinPipeline,
  'stable-diffusion-onnx': loadStableDiffusionPipeline,
};

export const pipelineNames = Object.keys(loaders);

export class UnknownPipelineError extends Error {}

/** Loads the model in `dir` with the named pipeline. */
export function loadPipeline(name: string, dir: string, options: LoadOptions): Promise<LoadedPipeline> {
  const load = loaders[name];
  if (!load) throw new UnknownPipelineError(`no pipeline named ${JSON.stringify(name)} (known: ${pipelineNames.join(', ')})`);
  return load(dir, options);
}
