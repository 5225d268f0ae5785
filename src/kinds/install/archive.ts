import crypto from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { entryProblem, openZipEntry, readZipDirectory } from '../../archives/zip-reader.js';
import { JobFailure } from '../../errors.js';
import { type ArchiveEntry, InvalidArchive, UnsafeArchive } from './archive-entry.js';
import { readTar } from './tar-reader.js';

export type ArchiveFormat = 'zip' | 'tar' | 'tar.gz';

export interface UnpackedFile {
  path: string;
  size: number;
  sha256: string;
}

export interface UnpackLimits {
  /** The most its files may add up to (KILN_MAX_UPLOAD_MB). */
  maxBytes: number;
  signal: AbortSignal;
  /** Asked before anything is written, with the bytes about to be (a zip's declared total, else the archive's size). */
  room(bytes: number): Promise<void>;
}

/** Entries one archive may hold. */
const MAX_ENTRIES = 10_000;

/** What a downloaded file is, from its first bytes: an archive, a safetensors file, or neither. */
export async function formatOf(file: string): Promise<ArchiveFormat | 'safetensors' | undefined> {
  const handle = await fs.open(file, 'r');
  const head = Buffer.alloc(512);
  const { bytesRead } = await handle.read(head, 0, 512, 0).finally(() => handle.close());
  if (bytesRead >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
  if (bytesRead >= 4 && head.readUInt32LE(0) === 0x06054b50) return 'zip';
  if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
  if (bytesRead === 512 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
  // safetensors: a little-endian u64 header length, then the JSON header itself.
  if (bytesRead >= 9 && head.readBigUInt64LE(0) < 100_000_000n && head[8] === 0x7b) return 'safetensors';
  return undefined;
}

/**
 * Unpacks an archive into `dest` (emptied first), refusing anything that could write outside it
 * or is not a plain file: absolute paths, `..`, links, devices, an entry twice, more than
 * KILN_MAX_UPLOAD_MB in all or more than it declares (a zip bomb). A zip is checked whole before
 * a byte is written; a tar as it is read. Returns the files with their hashes, relative to the
 * folder the model is in (an archive holding one folder is that folder).
 */
export async function unpackArchive(file: string, format: ArchiveFormat, dest: string, limits: UnpackLimits): Promise<{ dir: string; files: UnpackedFile[] }> {
  await fs.rm(dest, { recursive: true, force: true });
  await fs.mkdir(dest, { recursive: true });
  const files: UnpackedFile[] = [];
  const seen = new Set<string>();
  let total = 0;
  let count = 0;
  /** The entry's path when it is a file to write, after the checks; null for a folder. */
  const admit = (e: ArchiveEntry): string | null => {
    if (++count > MAX_ENTRIES) throw new InvalidArchive(`it holds more than ${MAX_ENTRIES} entries`);
    if (e.type === 'link') throw new UnsafeArchive(`${e.name} is a link`);
    if (e.type === 'other') throw new UnsafeArchive(`${e.name} is neither a file nor a folder`);
    const rel = safePath(e.name);
    if (e.type === 'directory' || rel === '') return null;
    if (seen.has(rel)) throw new UnsafeArchive(`${rel} is in it twice`);
    seen.add(rel);
    total += e.size;
    if (total > limits.maxBytes) {
      throw new JobFailure('TOO_LARGE', `it unpacks to more than the ${Math.floor(limits.maxBytes / 1024 / 1024)} MiB a model may be (KILN_MAX_UPLOAD_MB)`, false);
    }
    return rel;
  };
  try {
    if (format === 'zip') {
      const entries = (await zipEntries(file)).map((e) => ({ e, rel: admit(e) }));
      await limits.room(total);
      for (const { e, rel } of entries) if (rel) files.push(await writeEntry(dest, rel, e, limits.signal));
    } else {
      await limits.room((await fs.stat(file)).size);
      for await (const e of readTar(file, format === 'tar.gz')) {
        const rel = admit(e);
        if (rel) files.push(await writeEntry(dest, rel, e, limits.signal));
      }
    }
  } catch (err) {
    if (limits.signal.aborted) throw limits.signal.reason;
    if (err instanceof JobFailure) throw err;
    if (err instanceof UnsafeArchive) throw new JobFailure('UNSAFE_ARCHIVE', `the archive is refused: ${err.message}`, false);
    throw new JobFailure('INVALID_ARCHIVE', `the archive cannot be read: ${(err as Error).message}`, false, { cause: err });
  }
  return oneFolderIn(dest, files);
}

/**
 * A zip's entries, from its central directory, checked whole before a byte is written (the zip
 * reader holds each to its declared size and CRC-32 as it streams). Paths and links are judged by
 * `admit`, as a tar's are; encryption and compression methods Kiln cannot read here.
 */
async function zipEntries(file: string): Promise<ArchiveEntry[]> {
  return (await readZipDirectory(file, MAX_ENTRIES)).map((z) => {
    if (z.encrypted || (!z.directory && z.method !== 0 && z.method !== 8)) throw new InvalidArchive(`${z.name} ${entryProblem(z)}`);
    return { name: z.name, type: z.directory ? 'directory' : z.symlink ? 'link' : 'file', size: z.size, open: () => openZipEntry(file, z) };
  });
}

/** An entry's name as a relative path inside the archive's folder, or UnsafeArchive. */
function safePath(name: string): string {
  const plain = name.replace(/^(\.\/)+/, '').replace(/\/$/, '');
  if (plain.startsWith('/') || /^[A-Za-z]:/.test(plain) || plain.includes('\\') || plain.includes('\0')) throw new UnsafeArchive(`${name} is an absolute path`);
  const parts = plain.split('/');
  if (parts.includes('..')) throw new UnsafeArchive(`${name} climbs out of the archive's folder`);
  if (plain !== '' && parts.some((p) => p === '' || p === '.')) throw new UnsafeArchive(`${name} is not a plain path`);
  return plain;
}

async function writeEntry(dest: string, rel: string, e: ArchiveEntry, signal: AbortSignal): Promise<UnpackedFile> {
  signal.throwIfAborted();
  const target = path.join(dest, rel);
  await fs.mkdir(path.dirname(target), { recursive: true });
  const hash = crypto.createHash('sha256');
  let n = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      n += chunk.length;
      if (n > e.size) return callback(new UnsafeArchive(`${rel} unpacks to more than the ${e.size} bytes it declares`));
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  // 'wx': a file is only ever created, never written through something already there.
  await pipeline(await e.open(), meter, createWriteStream(target, { flags: 'wx' }), { signal });
  if (n !== e.size) throw new InvalidArchive(`${rel} holds ${n} bytes, not the ${e.size} it declares`);
  return { path: rel, size: n, sha256: hash.digest('hex') };
}

/** Archives usually wrap the model in a folder of its name: the model is that folder. */
function oneFolderIn(dest: string, files: UnpackedFile[]): { dir: string; files: UnpackedFile[] } {
  const top = files[0]?.path.split('/')[0];
  if (!top || !files.every((f) => f.path.startsWith(`${top}/`))) return { dir: dest, files };
  return { dir: path.join(dest, top), files: files.map((f) => ({ ...f, path: f.path.slice(top.length + 1) })) };
}
