import fs from 'node:fs/promises';
import path from 'node:path';
import { ModelFileError, quoteName } from './model-file-error.js';
import { type OnnxModelInfo, type OnnxTensor, readOnnxModel } from './onnx-model.js';

/**
 * ONNX Runtime reads a tensor's external data from `location` relative to the model's folder,
 * trusting the path. A model is accepted only when every such path stays inside that folder.
 */

/** ONNX Runtime reads `offset` of a tensor with this location as a raw memory address. */
const ORT_MEMORY_ADDRESS_TAG = '*/_ORT_MEM_ADDR_/*';

export interface ExternalDataOptions {
  /** Also require each referenced file to exist, be a regular file and hold offset + length bytes. */
  checkFiles?: boolean;
}

/** Parses the ONNX file and checks its external-data references against its own folder. */
export async function validateOnnxFile(file: string, options: ExternalDataOptions = {}): Promise<OnnxModelInfo> {
  const { info } = await readOnnxModel(file);
  await checkExternalData(info, path.dirname(file), options);
  return info;
}

/** Refuses any external-data location that could reach outside `modelDir`. */
export async function checkExternalData(info: OnnxModelInfo, modelDir: string, options: ExternalDataOptions = {}): Promise<void> {
  if (!info.externalTensors.length) return;
  const root = await fs.realpath(modelDir);
  const sizes = new Map<string, number>();
  for (const t of info.externalTensors) {
    if (t.data.kind !== 'external') continue;
    const target = path.join(root, checkExternalLocation(t));
    const real = await realpathOfExisting(target);
    if (!real) throw refuse(t, 'is a symbolic link that cannot be resolved');
    if (!isInside(root, real.path)) throw refuse(t, 'resolves, through a symbolic link, to a place outside the model folder');
    if (!options.checkFiles) continue;
    if (!real.exists) throw refuse(t, 'names a file that is not in the model folder');
    let size = sizes.get(real.path);
    if (size === undefined) {
      const stat = await fs.stat(real.path);
      if (!stat.isFile()) throw refuse(t, 'names something that is not a regular file');
      size = stat.size;
      sizes.set(real.path, size);
    }
    const { offset, length } = t.data;
    if (offset + (length ?? 0) > size) throw refuse(t, `needs bytes up to ${offset + (length ?? 0)} of a ${size}-byte file`);
  }
}

/** The location as a relative, normalised POSIX path, or a refusal saying what is wrong with it. */
function checkExternalLocation(t: OnnxTensor): string {
  if (t.data.kind !== 'external') throw new Error(`${t.name} has no external data`);
  const location = t.data.location;
  if (location === '') throw refuse(t, 'is empty');
  if (location.includes('\0')) throw refuse(t, 'contains a NUL character');
  if (location === ORT_MEMORY_ADDRESS_TAG) throw refuse(t, 'is ONNX Runtime’s in-memory tag, which reads arbitrary memory');
  if (location.includes('\\')) throw refuse(t, 'contains a backslash');
  if (/^[a-zA-Z]:/.test(location)) throw refuse(t, 'starts with a drive letter');
  if (path.posix.isAbsolute(location)) throw refuse(t, 'is an absolute path');
  const normal = path.posix.normalize(location);
  if (normal === '.' || normal === '..' || normal.startsWith('../')) throw refuse(t, 'leaves the model folder');
  return normal;
}

function refuse(t: OnnxTensor, problem: string): ModelFileError {
  const location = t.data.kind === 'external' ? t.data.location : '';
  return new ModelFileError(`The ONNX model's tensor ${quoteName(t.name)} has external data at ${quoteName(location)}, which ${problem}.`);
}

const isInside = (root: string, p: string) => {
  const rel = path.relative(root, p);
  return rel !== '' && !rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel);
};

/**
 * The real path of `p`, or of its deepest existing ancestor joined with the rest; null when a
 * symbolic link on the way loops or points at nothing (it could be made to point anywhere later).
 */
async function realpathOfExisting(p: string): Promise<{ path: string; exists: boolean } | null> {
  const rest: string[] = [];
  for (let current = p; ; ) {
    try {
      return { path: path.join(await fs.realpath(current), ...rest), exists: rest.length === 0 };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return null;
      if (await fs.lstat(current).then((s) => s.isSymbolicLink(), () => false)) return null;
      const parent = path.dirname(current);
      if (parent === current) throw err;
      rest.unshift(path.basename(current));
      current = parent;
    }
  }
}
