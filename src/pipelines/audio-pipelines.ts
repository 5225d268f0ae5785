import fs from 'node:fs/promises';
import path from 'node:path';
import type { AudioLoadOptions, AudioModelDeclaration, AudioPipelineLoader, LoadedAudioPipeline } from './audio-pipeline.js';
import { KilnError } from '../errors.js';
import { BUILTIN_MUSIC, BUILTIN_MUSIC_CLASS, BUILTIN_MUSIC_DEFAULTS, BUILTIN_MUSIC_FILES, BUILTIN_MUSIC_PIPELINE, missingBuiltinMusicFiles } from './builtin-music/model-files.js';
import { inspectMusicgenFolder, looksLikeMusicgenFolder, MUSICGEN_PIPELINE, type MusicgenFolder } from './musicgen/model-folder.js';

/**
 * The audio pipelines and what each accepts, for a pipeline registry and the API to read
 * without running a model: recognise a folder, load it, declare its ranges and defaults.
 * Nothing here brings in onnxruntime until a model is loaded.
 */
export interface AudioPipelineEntry {
  name: string;
  load: AudioPipelineLoader;
  /** Whether `dir` is meant for this pipeline (complete or not: `declare` says what is wrong). */
  recognises(dir: string): Promise<boolean>;
  /** Checks the folder (BAD_USER_INPUT naming every problem) and says what the model accepts. */
  declare(dir: string, options?: Pick<AudioLoadOptions, 'variant'>): Promise<AudioModelDeclaration>;
}

/** Requests' limits, whatever the model: durations the service offers, and sane guidance and temperature. */
export const AUDIO_LIMITS = {
  durationSeconds: { min: 1, max: 30 },
  guidanceScale: { min: 0, max: 20 },
  temperature: { min: 0, max: 4 },
} as const;

export function declareMusicgenModel(folder: MusicgenFolder, tokensPerSecond: number | null = null): AudioModelDeclaration {
  const perChannel = folder.codebooks / folder.channels;
  // The decoder's position table bounds the steps of one generation, hence the audio's length.
  const longest = Math.floor(((folder.maxPositions - 1 - (perChannel - 1)) / folder.frameRate) * 100) / 100;
  const maxSeconds = Math.min(AUDIO_LIMITS.durationSeconds.max, longest);
  return {
    pipeline: MUSICGEN_PIPELINE,
    durationSeconds: { min: AUDIO_LIMITS.durationSeconds.min, max: maxSeconds, default: Math.min(folder.defaults.durationSeconds, maxSeconds) },
    guidanceScale: { ...AUDIO_LIMITS.guidanceScale, default: folder.defaults.guidanceScale },
    topK: { min: 0, max: folder.vocabSize, default: Math.min(folder.defaults.topK, folder.vocabSize) },
    temperature: { ...AUDIO_LIMITS.temperature, default: folder.defaults.temperature },
    sampleRate: folder.sampleRate,
    channels: folder.channels,
    frameRate: folder.frameRate,
    stepsPerFrame: 1,
    extraSteps: perChannel - 1,
    tokensPerSecond,
  };
}

export function declareBuiltinMusicModel(tokensPerSecond: number | null = null): AudioModelDeclaration {
  return {
    pipeline: BUILTIN_MUSIC_PIPELINE,
    durationSeconds: { ...AUDIO_LIMITS.durationSeconds, default: BUILTIN_MUSIC_DEFAULTS.durationSeconds },
    guidanceScale: { ...AUDIO_LIMITS.guidanceScale, default: BUILTIN_MUSIC_DEFAULTS.guidanceScale },
    // Its vocabulary is the scale's notes: a top-k of all of them is the largest that means anything.
    topK: { min: 0, max: BUILTIN_MUSIC.degrees, default: Math.min(BUILTIN_MUSIC_DEFAULTS.topK, BUILTIN_MUSIC.degrees) },
    temperature: { ...AUDIO_LIMITS.temperature, default: BUILTIN_MUSIC_DEFAULTS.temperature },
    sampleRate: BUILTIN_MUSIC.sampleRate,
    channels: 1,
    frameRate: BUILTIN_MUSIC.frameRate,
    stepsPerFrame: 1,
    extraSteps: 0,
    tokensPerSecond,
  };
}

async function isBuiltinMusicFolder(dir: string): Promise<boolean> {
  const index = await fs.readFile(path.join(dir, BUILTIN_MUSIC_FILES.index), 'utf8').then(
    (text) => JSON.parse(text) as Record<string, unknown>,
    () => null,
  );
  return index?._class_name === BUILTIN_MUSIC_CLASS;
}

export const audioPipelines: Record<string, AudioPipelineEntry> = {
  [MUSICGEN_PIPELINE]: {
    name: MUSICGEN_PIPELINE,
    load: async (dir, options) => (await import('./musicgen/pipeline.js')).loadMusicgenPipeline(dir, options),
    recognises: looksLikeMusicgenFolder,
    declare: async (dir, options) => declareMusicgenModel(await inspectMusicgenFolder(dir, options)),
  },
  [BUILTIN_MUSIC_PIPELINE]: {
    name: BUILTIN_MUSIC_PIPELINE,
    load: async (dir, options) => (await import('./builtin-music/pipeline.js')).loadBuiltinMusicPipeline(dir, options),
    recognises: isBuiltinMusicFolder,
    async declare(dir) {
      const missing = await missingBuiltinMusicFiles(dir);
      if (missing.length) throw new KilnError('BAD_USER_INPUT', `not a usable built-in music folder: missing ${missing.join(', ')}`);
      return declareBuiltinMusicModel();
    },
  },
};

/** The audio pipeline a folder is meant for, or null when it holds no audio model. */
export async function audioPipelineFor(dir: string): Promise<AudioPipelineEntry | null> {
  for (const entry of Object.values(audioPipelines)) if (await entry.recognises(dir)) return entry;
  return null;
}

/**
 * Decoder steps per second of wall time, measured by one short generation (`steps` steps,
 * greedy, no guidance), for estimates made before a model has a history of runs.
 */
export async function measureTokensPerSecond(pipeline: LoadedAudioPipeline, steps = 64): Promise<number> {
  const result = await pipeline.generate(
    { prompt: 'a short measurement', maxNewTokens: steps, guidanceScale: 1, seed: 0, topK: 0, temperature: 0 },
    { signal: new AbortController().signal, onStep: () => {} },
  );
  return result.decoderSteps / (result.generateMs / 1000);
}
