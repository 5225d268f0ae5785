import type { AudioLoadOptions, AudioModelDeclaration, AudioPipelineLoader, LoadedAudioPipeline } from './audio-pipeline.js';
import { AUDIO_LIMITS, type AudioPipelineEntry, audioPipelines, declareBuiltinMusicModel } from './audio-pipelines.js';
import { BUILTIN_DEFAULTS, BUILTIN_FILES } from './builtin/model-files.js';
import { BUILTIN_MUSIC_PIPELINE } from './builtin-music/model-files.js';
import { type AudioCapabilities, audioCapabilities, audioModelDefaults, type ImageCapabilities, imageCapabilities, type ModelDefaults, type Modality } from './capabilities.js';
import type { LoadedPipeline, LoadOptions } from './pipeline.js';
import { FLUX_GUIDANCE, FLUX_PIPELINE, FLUX_SIDE, FLUX_STEPS } from './flux/capabilities.js';
import { fluxInstallFiles } from './flux/install-files.js';
import { inspectFluxFolder, looksLikeFluxFolder } from './flux/model-folder.js';
import { stableDiffusionInstallFiles } from './stable-diffusion/install-files.js';
import { MUSICGEN_DEFAULT_DURATION_S, MUSICGEN_PIPELINE } from './musicgen/model-folder.js';
import { inspectStableDiffusionFolder } from './stable-diffusion/model-folder.js';
import { STABLE_DIFFUSION_XL_PIPELINE } from './stable-diffusion-xl/declaration.js';
import { stableDiffusionXLInstallFiles } from './stable-diffusion-xl/install-files.js';
import { inspectStableDiffusionXLFolder, isStableDiffusionXLFolder } from './stable-diffusion-xl/model-folder.js';
import { SCHEDULER_NAMES } from './stable-diffusion/schedulers/scheduler-config.js';

export type PipelineLoader = (dir: string, options: LoadOptions) => Promise<LoadedPipeline>;

/**
 * A pipeline as the rest of Kiln sees it, without loading it: the API checks requests against
 * its capabilities, intake recognises its folders, workers advertise it, and only the runner
 * process calls `load` (which brings in onnxruntime). Image and audio pipelines differ in what
 * they accept and in what their loaded models do.
 */
export type PipelineDeclaration = ImagePipelineDeclaration | AudioPipelineDeclaration;

interface Declared<M extends Modality, C, L> {
  name: string;
  modality: M;
  /** What a model of this pipeline accepts, given the defaults intake recorded for it. */
  capabilities(defaults: ModelDefaults): C;
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
  load(): Promise<L>;
}

export type ImagePipelineDeclaration = Declared<'image', ImageCapabilities, PipelineLoader>;
export type AudioPipelineDeclaration = Declared<'audio', AudioCapabilities, AudioPipelineLoader>;

const builtin: ImagePipelineDeclaration = {
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

const stableDiffusion: ImagePipelineDeclaration = {
  name: 'stable-diffusion-onnx',
  modality: 'image',
  capabilities: (d) => imageCapabilities(d, { lora: true, schedulers: [...SCHEDULER_NAMES] }),
  async recognise(dir) {
    return { defaults: { ...(await inspectStableDiffusionFolder(dir)).defaults } };
  },
  installFiles: stableDiffusionInstallFiles,
  load: async () => (await import('./stable-diffusion/pipeline.js')).loadStableDiffusionPipeline,
};

const flux: ImagePipelineDeclaration = {
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

const stableDiffusionXL: ImagePipelineDeclaration = {
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

/**
 * An audio pipeline of audio-pipelines.ts: intake records its declaration as the model's
 * defaults, and a folder meant for it but broken is refused with every problem it names.
 */
function audioPipeline(entry: AudioPipelineEntry, fallback: AudioModelDeclaration): AudioPipelineDeclaration {
  return {
    name: entry.name,
    modality: 'audio',
    capabilities: (d) => audioCapabilities(d, fallback),
    async recognise(dir) {
      if (!(await entry.recognises(dir))) return undefined;
      const declaration = await entry.declare(dir).catch((err: unknown) => {
        throw new CatalogError((err as Error).message);
      });
      return { defaults: audioModelDefaults(declaration) };
    },
    load: async () => entry.load,
  };
}

const builtinMusic = audioPipeline(audioPipelines[BUILTIN_MUSIC_PIPELINE]!, declareBuiltinMusicModel());

// Capabilities of a MusicGen model that intake recorded nothing for: facebook/musicgen-small's.
const musicgen = audioPipeline(audioPipelines[MUSICGEN_PIPELINE]!, {
  pipeline: MUSICGEN_PIPELINE,
  durationSeconds: { ...AUDIO_LIMITS.durationSeconds, default: MUSICGEN_DEFAULT_DURATION_S },
  guidanceScale: { ...AUDIO_LIMITS.guidanceScale, default: 3 },
  topK: { min: 0, max: 2048, default: 250 },
  temperature: { ...AUDIO_LIMITS.temperature, default: 1 },
  sampleRate: 32000,
  channels: 1,
  frameRate: 50,
  stepsPerFrame: 1,
  extraSteps: 3,
  tokensPerSecond: null,
});

/**
 * Every pipeline, in the order intake tries them on a folder: the most specific layouts first,
 * Stable Diffusion's last (it names what an SD folder lacks when nothing else fits).
 */
export const PIPELINES: readonly PipelineDeclaration[] = [builtin, builtinMusic, musicgen, flux, stableDiffusionXL, stableDiffusion];

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

/** Loads the image model in `dir` with the named pipeline (in the runner process). */
export async function loadPipeline(name: string, dir: string, options: LoadOptions): Promise<LoadedPipeline> {
  const declared = pipelineNamed(name);
  if (declared.modality !== 'image') throw new UnknownPipelineError(`${name} is an ${declared.modality} pipeline, not an image one`);
  return (await declared.load())(dir, options);
}

/** Loads the audio model in `dir` with the named pipeline (in the runner process). */
export async function loadAudioPipeline(name: string, dir: string, options: AudioLoadOptions): Promise<LoadedAudioPipeline> {
  const declared = pipelineNamed(name);
  if (declared.modality !== 'audio') throw new UnknownPipelineError(`${name} is an ${declared.modality} pipeline, not an audio one`);
  return (await declared.load())(dir, options);
}
