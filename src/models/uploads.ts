import crypto from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Model } from '../db/entities/model.js';
import { type ModelUpload, ModelUploadEntity } from '../db/entities/model-upload.js';
import { badInput, conflict, KilnError, notFound } from '../errors.js';
import type { Logger } from '../log.js';
import type { Storage, UploadTarget } from '../storage/storage.js';
import { readableOf } from '../storage/web-stream.js';
import { modelKey } from '../storage/keys.js';
import { baseModelFor, checkModelPath, examineModel, LORA_FILE, type ModelInput, registerModel, withLocalCopy } from './intake.js';

export interface UploadDeps {
  ds: DataSource;
  storage: Storage;
  log: Logger;
  limits: { maxMultipartBytes: number; maxUploadBytes: number; urlTtlSeconds: number };
}

const tooLarge = (field: string, limit: number) =>
  new KilnError('PAYLOAD_TOO_LARGE', `${field} is larger than the ${Math.floor(limit / 1024 / 1024)} MiB allowed`, { field, limitBytes: limit });

/**
 * A LoRA adapter sent in the request itself (GraphQL multipart). Stored under a name Kiln
 * chooses, checked, and recorded; refused files leave nothing behind.
 */
export async function uploadModelFile(deps: UploadDeps, input: ModelInput, file: File): Promise<Model> {
  if (input.kind !== 'LORA') {
    throw badInput('input.kind', 'in a multipart upload must be LORA: a base model is a folder of files, sent with createModelUpload (one call per file)');
  }
  const limit = Math.min(deps.limits.maxMultipartBytes, deps.limits.maxUploadBytes);
  if (file.size > limit) throw tooLarge('file', limit);
  const base = await baseModelFor(deps.ds, input, 'input');
  const id = crypto.randomUUID();
  const prefix = modelKey(id);
  try {
    await deps.storage.put(`${prefix}/${LORA_FILE}`, readableOf(file.stream()));
    const examined = await withLocalCopy(deps.storage, prefix, [LORA_FILE], (dir) => examineModel(dir, [LORA_FILE], input, base && { model: base, storage: deps.storage }));
    return await registerModel(deps.ds.manager, id, input, examined);
  } catch (err) {
    await deps.storage.deletePrefix(prefix).catch((e) => deps.log.warn({ err: e, prefix }, 'could not remove a refused upload'));
    throw err;
  }
}

/**
 * Announces one file of a model that the client sends itself to the URL returned (a presigned
 * PUT, or the API's signed /uploads/ route with local storage). A folder is announced file by
 * file: the first call opens the upload, the next ones pass its id as `uploadId`.
 */
export async function createModelUpload(
  deps: UploadDeps,
  input: ModelInput & { path?: string | null; uploadId?: string | null },
  sizeBytes: number,
  baseUrl: string,
): Promise<{ upload: ModelUpload; path: string; target: UploadTarget }> {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 1) throw badInput('sizeBytes', 'must be a whole number of bytes, at least 1');
  if (sizeBytes > deps.limits.maxUploadBytes) throw tooLarge('sizeBytes', deps.limits.maxUploadBytes);
  const file = input.kind === 'LORA' ? LORA_FILE : checkModelPath(input.path ?? '', 'input.path');
  const ttlSeconds = deps.limits.urlTtlSeconds;
  const upload = await deps.ds.transaction(async (em) => {
    if (!input.uploadId) {
      await baseModelFor(deps.ds, input, 'input');
      const created: ModelUpload = {
        id: crypto.randomUUID(),
        name: input.name,
        kind: input.kind,
        baseModelId: input.baseModelId ?? null,
        triggerWord: input.triggerWord ?? null,
        files: [{ path: file, sizeBytes }],
        status: 'PENDING',
        expiresAt: new Date(Date.now() + ttlSeconds * 1000),
        createdAt: new Date(),
      };
      await em.insert(ModelUploadEntity, created);
      return created;
    }
    const open = await em.findOne(ModelUploadEntity, { where: { id: input.uploadId }, lock: { mode: 'pessimistic_write' } });
    if (!open || open.status !== 'PENDING' || open.expiresAt < new Date()) throw notFound('open upload', input.uploadId);
    if (open.kind === 'LORA') throw conflict('a LoRA adapter is one file; this upload has it already');
    if (open.files.some((f) => f.path === file)) throw badInput('input.path', `is already part of this upload (${file})`);
    const total = open.files.reduce((n, f) => n + f.sizeBytes, sizeBytes);
    if (total > deps.limits.maxUploadBytes) throw tooLarge('sizeBytes', deps.limits.maxUploadBytes);
    open.files = [...open.files, { path: file, sizeBytes }];
    await em.update(ModelUploadEntity, { id: open.id }, { files: open.files });
    return open;
  });
  const target = await deps.storage.uploadUrl(`${modelKey(upload.id)}/${file}`, { baseUrl, sizeBytes, ttlSeconds });
  return { upload, path: file, target };
}

/**
 * Checks what arrived for an upload and turns it into a model (with the upload's id). A file
 * still missing or short is BAD_USER_INPUT and the upload stays open; files that fail the checks
 * refuse the upload and are removed.
 */
export async function completeModelUpload(deps: UploadDeps, id: string): Promise<Model> {
  const upload = await deps.ds.manager.findOneBy(ModelUploadEntity, { id });
  if (!upload) throw notFound('upload', id);
  if (upload.status !== 'PENDING') throw conflict(`upload ${id} is already ${upload.status.toLowerCase()}`);
  if (upload.expiresAt < new Date()) throw notFound('open upload', id);
  const prefix = modelKey(id);
  for (const f of upload.files) {
    const arrived = await deps.storage.stat(`${prefix}/${f.path}`);
    if (arrived?.size !== f.sizeBytes) {
      throw badInput('id', `${f.path} has not fully arrived (${arrived?.size ?? 0} of ${f.sizeBytes} bytes)`);
    }
  }
  const claimed = await deps.ds.manager.update(ModelUploadEntity, { id, status: 'PENDING' }, { status: 'COMPLETED' });
  if (!claimed.affected) throw conflict(`upload ${id} is already being completed`);
  try {
    const base = await baseModelFor(deps.ds, upload, 'upload');
    const paths = upload.files.map((f) => f.path);
    const examined = await withLocalCopy(deps.storage, prefix, paths, (dir) => examineModel(dir, paths, upload, base && { model: base, storage: deps.storage }));
    return await registerModel(deps.ds.manager, id, upload, examined);
  } catch (err) {
    await deps.ds.manager.update(ModelUploadEntity, { id }, { status: 'REFUSED' });
    await deps.storage.deletePrefix(prefix).catch((e) => deps.log.warn({ err: e, prefix }, 'could not remove a refused upload'));
    throw err;
  }
}

/** Uploads nobody completed in time: their files go, and so do their URLs' use. */
export async function expireUploads(ds: DataSource, storage: Storage, log: Logger): Promise<void> {
  const stale = await ds.manager
    .createQueryBuilder(ModelUploadEntity, 'u')
    .where(`u.status = 'PENDING' AND u.expiresAt < now() - interval '5 minutes'`)
    .limit(100)
    .getMany();
  for (const u of stale) {
    const { affected } = await ds.manager.update(ModelUploadEntity, { id: u.id, status: 'PENDING' }, { status: 'REFUSED' });
    if (affected) await storage.deletePrefix(modelKey(u.id)).catch((err) => log.warn({ err, upload: u.id }, 'could not remove an expired upload'));
  }
}
