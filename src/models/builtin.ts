import crypto from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { ModelFile } from '../db/entities/model.js';
import { buildBuiltinModel, BUILTIN, BUILTIN_DEFAULTS } from '../pipelines/builtin/model-files.js';
import { builtinModelKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import { folderSha256 } from './content-hash.js';

export const BUILTIN_MODEL_NAME = 'kiln-builtin';

/**
 * Makes sure the built-in model's files are in storage and its row exists, and makes it the
 * default base model when there is none. Safe to run from several processes at once.
 */
export async function registerBuiltinModel(ds: DataSource, storage: Storage): Promise<string> {
  const built = buildBuiltinModel();
  const files: ModelFile[] = built.map((f) => ({
    path: f.path,
    sizeBytes: f.bytes.byteLength,
    sha256: crypto.createHash('sha256').update(f.bytes).digest('hex'),
  }));
  const sha256 = folderSha256(files);
  const storageKey = builtinModelKey(BUILTIN.version, sha256);
  for (const [i, f] of built.entries()) {
    const key = `${storageKey}/${f.path}`;
    if ((await storage.stat(key))?.size !== files[i]!.sizeBytes) await storage.put(key, f.bytes);
  }
  return ds.transaction(async (em) => {
    await em.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['kiln:builtin-model']);
    const [existing] = await em.query('SELECT id FROM models WHERE sha256 = $1', [sha256]);
    const id: string =
      existing?.id ??
      (
        await em.query(
          `INSERT INTO models (name, kind, pipeline, storage_key, files, size_bytes, sha256, builtin, defaults)
           VALUES ($1, 'BASE', 'builtin', $2, $3, $4, $5, true, $6) RETURNING id`,
          [
            BUILTIN_MODEL_NAME,
            storageKey,
            JSON.stringify(files),
            files.reduce((n, f) => n + f.sizeBytes, 0),
            sha256,
            JSON.stringify(BUILTIN_DEFAULTS),
          ],
        )
      )[0].id;
    await em.query(
      `UPDATE models SET is_default = true WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM models WHERE is_default)`,
      [id],
    );
    return id;
  });
}
