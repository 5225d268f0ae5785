import crypto from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { DataSource } from 'typeorm';
import { type Dataset, DatasetEntity, type DatasetUploadFile } from '../db/entities/dataset.js';
import { badInput, conflict, KilnError, notFound } from '../errors.js';
import type { Logger } from '../log.js';
import { withLocalCopy } from '../models/intake.js';
import { datasetKey, datasetUploadKey } from '../storage/keys.js';
import type { Storage, UploadTarget } from '../storage/storage.js';
import { readableOf } from '../storage/web-stream.js';
import { buildDatasetFolder, type BuiltDataset, type DatasetLimits, mib, type SentFile, tooLarge } from './dataset-intake.js';

export interface DatasetDeps {
  ds: DataSource;
  storage: Storage;
  log: Logger;
  limits: DatasetLimits;
  /** Lifetime of direct-upload URLs. */
  urlTtlSeconds: number;
}

export interface DatasetInput {
  name: string;
  /** The training resolution, when known: every image's short side must reach it. */
  resolution?: number | null;
}

/** Where the client sends one announced file. */
export type DatasetUploadTarget = UploadTarget & { name: string };

/**
 * A dataset sent in the request itself (multipart: images and captions, zips of them, or
 * both). Everything is checked before anything is kept; a refusal leaves no row and no file.
 */
export async function createDataset(deps: DatasetDeps, input: DatasetInput, files: File[]): Promise<Dataset> {
  const id = crypto.randomUUID();
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-dataset-'));
  try {
    const sent: SentFile[] = [];
    for (const [i, file] of files.entries()) {
      const local = path.join(scratch, `sent-${i}`);
      await pipeline(readableOf(file.stream()), createWriteStream(local));
      sent.push({ name: file.name, path: local, sizeBytes: file.size, field: `files.${i}` });
    }
    const built = await buildDatasetFolder(sent, deps.limits, path.join(scratch, 'dataset'), input.resolution);
    return await keep(deps, id, path.join(scratch, 'dataset'), built, async (ready) => {
      await deps.ds.manager.insert(DatasetEntity, { id, name: input.name, resolution: input.resolution ?? null, ...ready });
    });
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Opens a dataset upload whose files the client sends itself, one PUT per file to the URL
 * returned (a presigned S3 URL, or Kiln's signed /uploads/ URL with local storage); more can
 * be announced with `addDatasetUploadFiles`, and `completeDatasetUpload` checks them all.
 */
export async function createDatasetUpload(deps: DatasetDeps, input: DatasetInput, files: DatasetUploadFile[], baseUrl: string) {
  checkAnnounced(deps.limits, [], files);
  const id = crypto.randomUUID();
  await deps.ds.manager.insert(DatasetEntity, { id, name: input.name, status: 'UPLOADING', resolution: input.resolution ?? null, uploadFiles: files });
  const dataset = await deps.ds.manager.findOneByOrFail(DatasetEntity, { id });
  return { dataset, files: await targets(deps, id, files, 0, baseUrl) };
}

/** Announces more files for an open dataset upload. */
export async function addDatasetUploadFiles(deps: DatasetDeps, id: string, files: DatasetUploadFile[], baseUrl: string) {
  const { dataset, from } = await deps.ds.transaction(async (em) => {
    const open = await em.findOne(DatasetEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
    if (!open) throw notFound('dataset upload', id);
    if (open.status !== 'UPLOADING') throw conflict(`dataset ${id} is ${open.status.toLowerCase()}: no more files can be added`);
    checkAnnounced(deps.limits, open.uploadFiles, files);
    await em.update(DatasetEntity, { id }, { uploadFiles: [...open.uploadFiles, ...files] });
    return { dataset: { ...open, uploadFiles: [...open.uploadFiles, ...files] }, from: open.uploadFiles.length };
  });
  return { dataset, files: await targets(deps, id, files, from, baseUrl) };
}

/**
 * Checks what arrived for a dataset upload and makes it a ready dataset. A file still missing
 * or short is BAD_USER_INPUT and the upload stays open; a refusal of what was sent removes the
 * upload and all its files.
 */
export async function completeDatasetUpload(deps: DatasetDeps, id: string): Promise<Dataset> {
  const upload = await deps.ds.manager.findOneBy(DatasetEntity, { id });
  if (!upload) throw notFound('dataset upload', id);
  if (upload.status !== 'UPLOADING') throw conflict(`dataset ${id} is already ${upload.status.toLowerCase()}`);
  const prefix = datasetUploadKey(id);
  for (const [i, f] of upload.uploadFiles.entries()) {
    const arrived = await deps.storage.stat(`${prefix}/${i}`);
    if (arrived?.size !== f.sizeBytes) throw badInput(`files.${i}`, `${f.name} has not fully arrived (${arrived?.size ?? 0} of ${f.sizeBytes} bytes)`);
  }
  const claimed = await deps.ds.manager.update(DatasetEntity, { id, status: 'UPLOADING' }, { status: 'CHECKING' });
  if (!claimed.affected) throw conflict(`dataset ${id} is already being checked`);
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-dataset-'));
  try {
    const paths = upload.uploadFiles.map((_, i) => String(i));
    const out = path.join(scratch, 'dataset');
    const built = await withLocalCopy(deps.storage, prefix, paths, (dir) =>
      buildDatasetFolder(
        upload.uploadFiles.map((f, i) => ({ name: f.name, path: path.join(dir, String(i)), sizeBytes: f.sizeBytes, field: `files.${i}` })),
        deps.limits,
        out,
        upload.resolution,
      ),
    );
    const dataset = await keep(deps, id, out, built, async (ready) => {
      const { affected } = await deps.ds.manager.update(DatasetEntity, { id, status: 'CHECKING' }, { ...ready, uploadFiles: [] });
      if (!affected) throw conflict(`dataset ${id} was deleted while it was checked`);
    });
    await deps.storage.deletePrefix(prefix).catch((err) => deps.log.warn({ err, dataset: id }, "could not remove a completed dataset upload's files"));
    return dataset;
  } catch (err) {
    if (err instanceof KilnError && (err.code === 'BAD_USER_INPUT' || err.code === 'PAYLOAD_TOO_LARGE')) {
      // Refused: nothing of it is kept.
      await removeDataset(deps, id);
    } else {
      // Kiln's own trouble (storage, the database): the client may try again with what it sent.
      await deps.ds.manager.update(DatasetEntity, { id, status: 'CHECKING' }, { status: 'UPLOADING' });
    }
    throw err;
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** The row and every file of a dataset, ready or not. */
export async function removeDataset(deps: Pick<DatasetDeps, 'ds' | 'storage' | 'log'>, id: string): Promise<void> {
  await deps.ds.manager.delete(DatasetEntity, { id });
  for (const prefix of [datasetKey(id), datasetUploadKey(id)]) {
    await deps.storage.deletePrefix(prefix).catch((err) => deps.log.warn({ err, dataset: id, prefix }, "could not remove a dataset's files"));
  }
}

/** Stores the canonical folder under `datasets/<id>/` (manifest last), then records it; a failure removes what was stored. */
async function keep(deps: DatasetDeps, id: string, dir: string, built: BuiltDataset, record: (ready: Pick<Dataset, 'status' | 'images' | 'imageCount' | 'sizeBytes' | 'sha256' | 'readyAt'>) => Promise<void>): Promise<Dataset> {
  const prefix = datasetKey(id);
  try {
    const names = (await fs.readdir(dir)).sort((a, b) => (a === 'manifest.json' ? 1 : b === 'manifest.json' ? -1 : a < b ? -1 : 1));
    for (const name of names) await deps.storage.put(`${prefix}/${name}`, createReadStream(path.join(dir, name)));
    await record({ status: 'READY', images: built.images, imageCount: built.images.length, sizeBytes: built.sizeBytes, sha256: built.sha256, readyAt: new Date() });
  } catch (err) {
    await deps.storage.deletePrefix(prefix).catch((e) => deps.log.warn({ err: e, dataset: id }, 'could not remove a dataset that was not recorded'));
    throw err;
  }
  return deps.ds.manager.findOneByOrFail(DatasetEntity, { id });
}

/** What can be refused before a byte is sent: names, types, sizes and counts as announced. */
function checkAnnounced(limits: DatasetLimits, earlier: DatasetUploadFile[], files: DatasetUploadFile[]) {
  if (!files.length) throw badInput('files', 'must announce at least one file');
  const all = [...earlier, ...files];
  const maxFiles = 2 * limits.maxImages + 100;
  if (all.length > maxFiles) throw badInput('files', `would make ${all.length} files; an upload takes at most ${maxFiles}`);
  const names = new Set(earlier.map((f) => f.name));
  for (const [i, f] of files.entries()) {
    const field = `files.${i}`;
    if (!f.name || f.name.length > 255 || /[/\\\0]/.test(f.name) || f.name === '.' || f.name === '..') throw badInput(`${field}.name`, 'must be a plain file name');
    const ext = path.extname(f.name).toLowerCase();
    if (!['.jpg', '.jpeg', '.png', '.webp', '.txt', '.zip'].includes(ext)) throw badInput(`${field}.name`, `${f.name} is neither a .jpg, .jpeg, .png or .webp image, a .txt caption nor a .zip of them`);
    if (names.has(f.name)) throw badInput(`${field}.name`, `${f.name} is announced twice`);
    names.add(f.name);
    if (!Number.isSafeInteger(f.sizeBytes) || f.sizeBytes < 1) throw badInput(`${field}.sizeBytes`, 'must be a whole number of bytes, at least 1');
    const limit = ext === '.zip' ? limits.maxBytes : limits.maxFileBytes;
    if (f.sizeBytes > limit) throw tooLarge(`${field}.sizeBytes`, `is more than the ${mib(limit)} a ${ext === '.zip' ? 'dataset' : 'file'} may be`, limit);
  }
  const total = all.reduce((n, f) => n + f.sizeBytes, 0);
  if (total > limits.maxBytes) throw tooLarge('files', `add up to ${mib(total)}; a dataset takes at most ${mib(limits.maxBytes)}`, limits.maxBytes);
}

async function targets(deps: DatasetDeps, id: string, files: DatasetUploadFile[], from: number, baseUrl: string): Promise<DatasetUploadTarget[]> {
  return Promise.all(
    files.map(async (f, i) => ({
      name: f.name,
      ...(await deps.storage.uploadUrl(`${datasetUploadKey(id)}/${from + i}`, { baseUrl, sizeBytes: f.sizeBytes, ttlSeconds: deps.urlTtlSeconds })),
    })),
  );
}
