import crypto from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { ModelFile } from '../db/entities/model.js';
import { buildBuiltinModel, BUILTIN, BUILTIN_DEFAULTS } from '../pipelines/builtin/model-files.js';
import type { Modality, ModelDefaults } from '../pipelines/capabilities.js';
import { builtinModelKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import { folderSha256 } from './content-hash.js';

export const BUILTIN_MODEL_NAME = 'kiln-builtin';

/** A model Kiln's own code makes: the same bytes on every install. */
export interface ShippedModel {
  name: string;
  pipeline: string;
  modality: Modality;
  files: { path: string; bytes: Uint8Array }[];
  /** Its folder in storage, from the hash of its files. */
  storageKey(sha256: string): string;
  defaults: ModelDefaults;
}

/**
 * Makes sure the built-in image model's files are in storage and its row exists, and makes it
 * the default image model when there is none. Safe to run from several processes at once.
 */
export function registerBuiltinModel(ds: DataSource, storage: Storage): Promise<string> {
  return registerShippedModel(ds, storage, {
    name: BUILTIN_MODEL_NAME,
    pipeline: 'builtin',
    modality: 'image',
    files: buildBuiltinModel(),
    storageKey: (sha256) => builtinModelKey(BUILTIN.version, sha256),
    defaults: BUILTIN_DEFAULTS,
  });
}

/**
 * Stores a model Kiln ships (its files once, by content), records it as a built-in model (which
 * cannot be deleted), and makes it the default model of its modality when that has none.
 */
export async function registerShippedModel(ds: DataSource, storage: Storage, shipped: ShippedModel): Promise<string> {
  const files: ModelFile[] = shipped.files.map((f) => ({
    path: f.path,
    sizeBytes: f.bytes.byteLength,
    sha256: crypto.createHash('sha256').update(f.bytes).digest('hex'),
  }));
  const sha256 = folderSha256(files);
  const storageKey = shipped.storageKey(sha256);
  for (const [i, f] of shipped.files.entries()) {
    const key = `${storageKey}/${f.path}`;
    if ((await storage.stat(key))?.size !== files[i]!.sizeBytes) await storage.put(key, f.bytes);
  }
  return ds.transaction(async (em) => {
    await em.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`kiln:shipped-model:${shipped.pipeline}`]);
    const [existing] = await em.query('SELECT id FROM models WHERE sha256 = $1', [sha256]);
    const id: string =
      existing?.id ??
      (
        await em.query(
          `INSERT INTO models (name, kind, pipeline, modality, storage_key, files, size_bytes, sha256, builtin, defaults)
           VALUES ($1, 'BASE', $2, $3, $4, $5, $6, $7, true, $8) RETURNING id`,
          [
            shipped.name,
            shipped.pipeline,
            shipped.modality,
            storageKey,
            JSON.stringify(files),
            files.reduce((n, f) => n + f.sizeBytes, 0),
            sha256,
            JSON.stringify(shipped.defaults),
          ],
        )
      )[0].id;
    await em.query(`UPDATE models SET is_default = true WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM models WHERE is_default AND modality = $2)`, [id, shipped.modality]);
    return id;
  });
}
