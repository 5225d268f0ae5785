import crypto from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline as pipe } from 'node:stream/promises';
import { type DataSource, type EntityManager, IsNull } from 'typeorm';
import { type Model, ModelEntity, type ModelFile, type ModelKind } from '../db/entities/model.js';
import { badInput, KilnError } from '../errors.js';
import { CatalogError, PIPELINES, pipelineNamed } from '../pipelines/catalog.js';
import { modelKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import { folderSha256 } from './content-hash.js';
import { readLoraAdapter } from './lora-adapter.js';
import { type LoraBaseFamily, loraBaseFamily } from './lora-family.js';
import { checkLoraFits } from './lora-for-model.js';
import { pipelineLoraGraphs } from './lora-targets.js';
import { ModelFileError } from './model-file-error.js';
import { validateOnnxFile } from './onnx-validation.js';
import { readSafetensorsHeader } from './safetensors.js';

export interface ModelInput {
  name: string;
  kind: ModelKind;
  baseModelId?: string | null;
  triggerWord?: string | null;
}

/** The file name a LoRA adapter is kept under, whatever the client called it. */
export const LORA_FILE = 'adapter.safetensors';

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * A file's place in a model folder: one to three plain segments (`model_index.json`,
 * `unet/model.onnx`, and `transformer.opt/fp16/model.onnx` for the BFL layout).
 */
export function checkModelPath(p: string, field: string): string {
  if (!isModelPath(p)) throw badInput(field, `must be ${MODEL_PATH}`);
  return p;
}

/** What a model file's path must be, in words. */
export const MODEL_PATH = 'a file name under at most two folders, of letters, digits, ".", "_" and "-" (e.g. unet/model.onnx)';

export function isModelPath(p: string): boolean {
  const parts = p.split('/');
  return parts.length <= 3 && parts.every((s) => SEGMENT.test(s) && !/^\.+$/.test(s));
}

/** The base model a LoRA names, which decides its pipeline. */
export async function baseModelFor(ds: DataSource, input: ModelInput, field: string): Promise<Model | undefined> {
  if (input.kind === 'BASE') {
    if (input.baseModelId) throw badInput(`${field}.baseModelId`, 'is only for LoRA adapters');
    return undefined;
  }
  if (!input.baseModelId) throw badInput(`${field}.baseModelId`, 'is needed: a LoRA adapter applies to a base model');
  const base = await ds.manager.findOneBy(ModelEntity, { id: input.baseModelId });
  if (!base || base.deletedAt || base.kind !== 'BASE') throw badInput(`${field}.baseModelId`, `names no base model (${input.baseModelId})`);
  if (!pipelineLoraGraphs[base.pipeline]) throw badInput(`${field}.baseModelId`, `names a ${base.pipeline} model, which takes no LoRA adapters`);
  return base;
}

/** What intake learnt about a LoRA adapter. */
export interface LoraFacts {
  /** The family its metadata says it was trained for, where it says one. */
  baseFamily: LoraBaseFamily | null;
  modules: number;
  /** Modules that patch a weight of the base model (the rest are for parts the model lacks). */
  matched: number;
}

export interface ExaminedModel {
  pipeline: string;
  defaults: Record<string, number | string>;
  files: ModelFile[];
  /** For LoRA adapters. */
  lora?: LoraFacts;
}

/**
/**
 * A LoRA's base model, as intake reads its graphs: from its folder on this machine (a worker's
 * model cache), or from storage (graph files only).
 */
export type BaseModelFiles = { model: Model; dir: string } | { model: Model; storage: Storage };

/**
 * Checks a model's files (in `dir`, on this machine) before Kiln accepts them, hashes each (but
 * those whose hash the caller already took as it wrote them, in `hashes`), and works out the
 * model's pipeline and defaults. A LoRA adapter is matched against its base model's graphs and
 * refused unless it applies to them. Throws a BAD_USER_INPUT error (ModelFileError) saying what
 * is wrong.
 */
export async function examineModel(
  dir: string,
  paths: string[],
  input: ModelInput,
  base: BaseModelFiles | undefined,
  hashes: ReadonlyMap<string, string> = new Map(),
): Promise<ExaminedModel> {
  for (const p of paths) await checkFile(dir, p);
  const files: ModelFile[] = [];
  for (const p of [...paths].sort()) {
    files.push({ path: p, sizeBytes: (await fs.stat(path.join(dir, p))).size, sha256: hashes.get(p) ?? (await sha256Of(path.join(dir, p))) });
  }
  if (input.kind === 'LORA') {
    if (paths.length !== 1 || !paths[0]!.endsWith('.safetensors')) throw new ModelFileError('A LoRA adapter is one .safetensors file.');
    const adapter = await readLoraAdapter(path.join(dir, paths[0]!));
    if (adapter.modules.length === 0) throw new ModelFileError('The file holds no LoRA modules.');
    const { model } = base!;
    const targets = pipelineLoraGraphs[model.pipeline]!;
    const graphFiles = model.files.map((f) => f.path).filter((p) => targets.some((t) => t.files.includes(p)));
    const fit =
      'dir' in base!
        ? await checkLoraFits(adapter, targets, base.dir)
        : await withLocalCopy(base!.storage, model.storageKey, graphFiles, (baseDir) => checkLoraFits(adapter, targets, baseDir));
    const baseFamily = loraBaseFamily(adapter.metadata);
    // The family its metadata names is kept with it, for clients to show and match.
    return { pipeline: model.pipeline, defaults: baseFamily ? { baseFamily: baseFamily.family } : {}, files, lora: { baseFamily, modules: fit.modules, matched: fit.matched } };
  }
  const index = await readJson(dir, 'model_index.json');
  // The first pipeline whose layout the folder is in; the last one's refusal says what is missing.
  let refusal: unknown;
  for (const pipeline of PIPELINES) {
    try {
      const recognised = await pipeline.recognise(dir, paths, index);
      if (recognised) return { pipeline: pipeline.name, defaults: recognised.defaults, files };
    } catch (err) {
      if (err instanceof CatalogError) throw new ModelFileError(err.message);
      refusal = err;
    }
  }
  throw refusal ?? new ModelFileError('The folder is in no layout Kiln runs.');
}

/** Each file checked for what its kind must be: graphs parsed, weights' headers read, JSON parsed. */
async function checkFile(dir: string, p: string) {
  const file = path.join(dir, p);
  if (p.endsWith('.onnx')) await validateOnnxFile(file, { checkFiles: true });
  else if (p.endsWith('.safetensors')) await readSafetensorsHeader(file);
  else if (p.endsWith('.json')) await readJson(dir, p);
}

async function readJson(dir: string, p: string): Promise<Record<string, unknown> | undefined> {
  const file = path.join(dir, p);
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat) return undefined;
  if (stat.size > 16 * 1024 * 1024) throw new ModelFileError(`${p} is too large for a JSON file.`);
  try {
    const value: unknown = JSON.parse(await fs.readFile(file, 'utf8'));
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    throw new ModelFileError(`${p} is not valid JSON.`);
  }
}

async function sha256Of(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  await pipe(createReadStream(file), hash);
  return hash.digest('hex');
}

/**
 * Runs `fn` on a folder of this machine holding the model's files: the storage's own folder when
 * it keeps files on local disk, else a temporary copy (removed afterwards).
 */
export async function withLocalCopy<T>(storage: Storage, prefix: string, paths: string[], fn: (dir: string) => Promise<T>): Promise<T> {
  const local = storage.localPath(prefix);
  if (local !== undefined) return fn(local);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-intake-'));
  try {
    for (const p of paths) {
      const target = path.join(dir, p);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await pipe(await storage.read(`${prefix}/${p}`), createWriteStream(target));
    }
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/**
 * Records a model whose checked files are in storage under `models/<id>`, with `em` (the data
 * source's manager, or a transaction's). The same bytes are kept once: a second copy is a
 * CONFLICT that names the model already holding them.
 */
export async function registerModel(
  em: EntityManager,
  id: string,
  input: ModelInput,
  examined: ExaminedModel,
): Promise<Model> {
  const sha256 = examined.files.length === 1 && input.kind === 'LORA' ? examined.files[0]!.sha256 : folderSha256(examined.files);
  const existing = await em.findOneBy(ModelEntity, { sha256, deletedAt: IsNull() });
  if (existing) throw duplicate(existing);
  // Two models of the same bytes at once: the unique index decides. DO NOTHING leaves the loser's
  // transaction usable, to find the winner and say so.
  const inserted = await em
    .createQueryBuilder()
    .insert()
    .into(ModelEntity)
    .values({
      id,
      name: input.name,
      kind: input.kind,
      pipeline: examined.pipeline,
      modality: pipelineNamed(examined.pipeline).modality,
      baseModelId: input.baseModelId ?? null,
      triggerWord: input.triggerWord ?? null,
      storageKey: modelKey(id),
      files: examined.files,
      sizeBytes: examined.files.reduce((n, f) => n + f.sizeBytes, 0),
      sha256,
      defaults: examined.defaults,
    } as never)
    .orIgnore()
    .returning('id')
    .execute();
  if (!(inserted.raw as unknown[]).length) {
    const winner = await em.findOneBy(ModelEntity, { sha256, deletedAt: IsNull() });
    if (winner) throw duplicate(winner);
    throw new Error(`model ${id} was not recorded`);
  }
  return em.findOneByOrFail(ModelEntity, { id });
}

const duplicate = (m: Model) => new KilnError('CONFLICT', `the same file(s) are already model "${m.name}" (${m.id})`, { modelId: m.id });
