import type { DataSource } from 'typeorm';
import { declareBuiltinMusicModel } from '../pipelines/audio-pipelines.js';
import { BUILTIN_MUSIC, BUILTIN_MUSIC_PIPELINE, buildBuiltinMusicModel } from '../pipelines/builtin-music/model-files.js';
import { audioModelDefaults } from '../pipelines/capabilities.js';
import { builtinMusicModelKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import { registerShippedModel } from './builtin.js';

export const BUILTIN_MUSIC_MODEL_NAME = 'kiln-builtin-music';

/**
 * Makes sure the built-in music model's files are in storage and its row exists, and makes it
 * the default music model when there is none: `generateAudio` works on a fresh, offline Kiln.
 */
export function registerBuiltinMusicModel(ds: DataSource, storage: Storage): Promise<string> {
  return registerShippedModel(ds, storage, {
    name: BUILTIN_MUSIC_MODEL_NAME,
    pipeline: BUILTIN_MUSIC_PIPELINE,
    modality: 'audio',
    files: buildBuiltinMusicModel(),
    storageKey: (sha256) => builtinMusicModelKey(BUILTIN_MUSIC.version, sha256),
    defaults: audioModelDefaults(declareBuiltinMusicModel()),
  });
}
