import { BUILTIN_DEFAULTS, BUILTIN_FILES } from './builtin/model-files.js';
import { type Capabilities, imageCapabilities, type ModelDefaults, type Modality } from './capabilities.js';
import type { LoadedPipeline, LoadOptions } from './pipeline.js';
import { FLUX_GUIDANCE, FLUX_PIPELINE, FLUX_SIDE, FLUX_STEPS } from './flux/capabilities.js';
import { fluxInstallFiles } from './flux/install-files.js';
import { inspectFluxFolder, looksLikeFluxFolder } from './flux/model-folder.js';
import { stableDiffusionInstallFiles } from './stable-diffusion/install-files.js';
import { inspectStableDiffusionFolder } from './stable-diffusion/model-folder.js';
import { STABLE_DIFFUSION_XL_PIPELINE } from './stable-diffusion-xl/declaration.js';
import { stableDiffusionXLInstallFiles } from './stable-diffusion-xl/install-files.js';
import { inspectStableDiffusionXLFolder, isStableDiffusionXLFolder } from './stable-diffusion-xl/model-folder.js';
import { SCHEDULER_NAMES } from './stable-diffusion/schedulers/scheduler-config.js';

export type PipelineLoader = (dir: string, options: LoadOptions) => Promise<LoadedPipeline>;

/**
 * A pipeline as the rest of Kiln sees it, without loading it: the API checks requests against
 * its capabilities, intake recognises its folders, workers advertise it, and only the runner
 * process calls `load` (which brings in onnxruntime).
 */
export interface PipelineDeclaration {
  name: string;
  modality: Modality;
  /** What a model of this pipeline accepts, given the defaults intake recorded for it. */
  capabilities(defaults: ModelDefaults): Capabilities;
  /** Execution providers it can run on, when not every one (a worker without them does not take its jobs). */
  runsOn?: string[];
  /**
   * Whether the folder is one of this pipeline's layouts: its defaults when it is, undefined
   * when it is not. A folder in its layout but broken is refused with a KilnError saying why.
   */
  recognise(dir: string, paths: string[], index: Record<string, unknown> | undefined): Promise<{ defaults: ModelDefaults } | undefined>;
  /**
   * The files a model of it needs of a repository whose files (paths from its root) are in one of
   * its layouts: what an install downloads unless told otherwise (see install-files.ts).
   * Undefined when they are in none; a LayoutRefusal when they are in one it cannot run.
   */
  installFiles?(paths: string[]): string[] | undefined;
  load(): Promise<PipelineLoader>;
}

const builtin: PipelineDeclaration = {
  name: 'builtin',
  modality: 'image',
  capabilities: (d) => imageCapabilities({ ...BUILTIN_DEFAULTS, ...d }, { lora: true }),
  async recognise(_dir, paths, index) {
    if (index?._class_name !== 'KilnBuiltinPipeline') return undefined;
    const missing = [BUILTIN_FILES.textEncoder, BUILTIN_FILES.denoiser].filter((f) => !paths.includes(f));
    if (missing.length) throw new CatalogError(`A built-in-pipeline model needs ${missing.join(' and ')}.`);
    return { defaults: {} };
  },
  installFiles: (paths) => {
    const files = Object.values(BUILTIN_FILES);
    return files.every((f) => paths.includes(f)) ? files : undefined;
  },
  load: async () => (await import('./builtin/pipeline.js')).loadBuiltinPipeline,
};

const stableDiffusion: PipelineDeclaration = {
  name: 'stable-diffusion-onnx',
  modality: 'image',
  capabilities: (d) => imageCapabilities(d, { lora: true, schedulers: [...SCHEDULER_NAMES] }),
  async recognise(dir) {
    return { defaults: { ...(await inspectStableDiffusionFolder(dir)).defaults } };
  },
  installFiles: stableDiffusionInstallFiles,
  load: async () => (await import('./stable-diffusion/pipeline.js')).loadStableDiffusionPipeline,
};

const flux: PipelineDeclaration = {
  name: FLUX_PIPELINE,
  modality: 'image',
  capabilities: (d) =>
    imageCapabilities(d, {
      lora: true,
      negativePrompt: false,
      steps: { ...FLUX_STEPS, default: Number(d.steps ?? 28) },
      width: { ...FLUX_SIDE, default: Number(d.width ?? 1024) },
      height: { ...FLUX_SIDE, default: Number(d.height ?? 1024) },
      // schnell has no guidance embedding: its only guidance is none.
      guidanceScale: d.variant === 'schnell' ? { min: 0, max: 0, default: 0 } : { ...FLUX_GUIDANCE, default: Number(d.guidanceScale ?? 3.5) },
    }),
  async recognise(dir) {
    if (!(await looksLikeFluxFolder(dir))) return undefined;
    const folder = await inspectFluxFolder(dir);
    if (!folder.tokenizers) throw new CatalogError('This FLUX.1 folder has no text encoders and tokenizers: it runs from prompt embeddings only (npm run generate), not from prompts.');
    return { defaults: { ...folder.defaults, variant: folder.variant } };
  },
  installFiles: fluxInstallFiles,
  load: async () => (await import('./flux/pipeline.js')).loadFluxPipeline,
};

const stableDiffusionXL: PipelineDeclaration = {
  name: STABLE_DIFFUSION_XL_PIPELINE,
  modality: 'image',
  capabilities: (d) => {
    // Sides are multiples of 8 times the UNet's downsampling (32 for SDXL), as its folder said.
    const multipleOf = Number(d.sizeMultiple ?? 32);
    return imageCapabilities(d, {
      lora: true,
      schedulers: [...SCHEDULER_NAMES],
      sizeConditioning: true,
      width: { min: 64, max: 2048, multipleOf, default: Number(d.width ?? 1024) },
      height: { min: 64, max: 2048, multipleOf, default: Number(d.height ?? 1024) },
    });
  },
  async recognise(dir) {
    if (!(await isStableDiffusionXLFolder(dir))) return undefined;
    const folder = await inspectStableDiffusionXLFolder(dir);
    if (!folder.textEncoders) throw new CatalogError('This SDXL folder has no text encoders and tokenizers: it runs from prompt embeddings only (npm run generate), not from prompts.');
    return { defaults: { ...folder.defaults, sizeMultiple: folder.sizeMultiple } };
  },
  installFiles: stableDiffusionXLInstallFiles,
  load: async () => (await import('./stable-diffusion-xl/pipeline.js')).loadStableDiffusionXLPipeline,
};

/** Every pipeline, in the order intake tries them on a folder (the most specific layouts first). */
export const PIPELINES: readonly PipelineDeclaration[] = [builtin, flux, stableDiffusionXL, stableDiffusion];

export class CatalogError extends Error {}

export class UnknownPipelineError extends Error {}

export function pipelineNamed(name: string): PipelineDeclaration {
  const found = PIPELINES.find((p) => p.name === name);
  if (!found) throw new UnknownPipelineError(`no pipeline named ${JSON.stringify(name)} (known: ${PIPELINES.map((p) => p.name).join(', ')})`);
  return found;
}

/** The pipelines a worker with these execution providers can run. */
export const runnablePipelines = (providers: string[]): string[] =>
  PIPELINES.filter((p) => !p.runsOn || p.runsOn.some((x) => providers.includes(x))).map((p) => p.name);

/** Every scheduler some pipeline offers, for the API's enum. */
export const allSchedulers = (): string[] => [...new Set(PIPELINES.flatMap((p) => { const c = p.capabilities({}); return c.modality === 'image' ? c.schedulers : []; }))];

/** Loads the model in `dir` with the named pipeline (in the runner process). */
export async function loadPipeline(name: string, dir: string, options: LoadOptions): Promise<LoadedPipeline> {
  return (await pipelineNamed(name).load())(dir, options);
}
