import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';

/**
 * A zip archive read from its central directory (APPNOTE 6.3: the end record, Zip64's end
 * record and extra field, stored and deflated entries), the way unzip tools do: the directory
 * says what each entry is, and an entry's bytes are inflated as they stream, held to the size
 * it declares and checked against its CRC-32. Local headers are only used to find the data.
 * Nothing here trusts a name: callers check paths (see `entryProblem`).
 */

export interface ZipEntry {
  /** Its path in the archive, `/`-separated (backslashes, which some Windows tools write, turned into `/`). */
  name: string;
  directory: boolean;
  /** A Unix symbolic link (its data is the target path). */
  symlink: boolean;
  encrypted: boolean;
  /** 0 stored, 8 deflated; anything else is refused by `open`. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localHeaderOffset: number;
}

export class ZipError extends Error {}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** Reads the central directory of the zip file; more than `maxEntries` entries is refused before they are read. */
export async function readZipDirectory(file: string, maxEntries: number): Promise<ZipEntry[]> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const read = async (position: number, length: number) => {
      if (position < 0 || length < 0 || position + length > size) throw new ZipError('it is cut short (a record points past its end)');
      const buf = Buffer.alloc(length);
      await handle.read(buf, 0, length, position);
      return buf;
    };
    // The end record is in the last 22 bytes plus a comment of at most 65,535.
    const tailLength = Math.min(size, 22 + 0xffff);
    const tail = await read(size - tailLength, tailLength);
    let at = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD && i + 22 + tail.readUInt16LE(i + 20) <= tail.length) {
        at = i;
        break;
      }
    }
    if (at < 0) throw new ZipError('it is not a zip archive (no end of central directory record)');
    const eocdOffset = size - tailLength + at;
    let disk = tail.readUInt16LE(at + 4);
    let count = tail.readUInt16LE(at + 10);
    let dirSize = tail.readUInt32LE(at + 12);
    let dirOffset = tail.readUInt32LE(at + 16);
    if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
      const locator = eocdOffset >= 20 ? await read(eocdOffset - 20, 20) : undefined;
      if (!locator || locator.readUInt32LE(0) !== ZIP64_LOCATOR) throw new ZipError('it says it is a Zip64 archive but has no Zip64 end record');
      const record = await read(safeNumber(locator.readBigUInt64LE(8)), 56);
      if (record.readUInt32LE(0) !== ZIP64_EOCD) throw new ZipError('its Zip64 end record is damaged');
      disk = record.readUInt32LE(16);
      count = safeNumber(record.readBigUInt64LE(32));
      dirSize = safeNumber(record.readBigUInt64LE(40));
      dirOffset = safeNumber(record.readBigUInt64LE(48));
    }
    if (disk !== 0) throw new ZipError('it is split over several files (multi-disk archives are not taken)');
    if (count > maxEntries) throw new ZipError(`it holds ${count} entries; at most ${maxEntries} are taken`);
    const dir = await read(dirOffset, dirSize);
    const entries: ZipEntry[] = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > dir.length || dir.readUInt32LE(p) !== CENTRAL) throw new ZipError('its central directory is damaged');
      const madeBy = dir.readUInt16LE(p + 4) >> 8;
      const flags = dir.readUInt16LE(p + 8);
      const method = dir.readUInt16LE(p + 10);
      const crc32 = dir.readUInt32LE(p + 16);
      let compressedSize = dir.readUInt32LE(p + 20);
      let entrySize = dir.readUInt32LE(p + 24);
      const nameLength = dir.readUInt16LE(p + 28);
      const extraLength = dir.readUInt16LE(p + 30);
      const commentLength = dir.readUInt16LE(p + 32);
      const external = dir.readUInt32LE(p + 38);
      let localHeaderOffset = dir.readUInt32LE(p + 42);
      const end = p + 46 + nameLength + extraLength + commentLength;
      if (end > dir.length) throw new ZipError('its central directory is damaged');
      const rawName = dir.subarray(p + 46, p + 46 + nameLength);
      const extra = dir.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength);
      // Zip64: the fields that overflowed 32 bits follow in this order.
      const zip64 = extraField(extra, 0x0001);
      if (zip64) {
        let q = 0;
        const next = () => {
          if (q + 8 > zip64.length) throw new ZipError('its Zip64 extra field is damaged');
          const v = safeNumber(zip64.readBigUInt64LE(q));
          q += 8;
          return v;
        };
        if (entrySize === 0xffffffff) entrySize = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
      }
      const name = decodeName(rawName, (flags & 0x800) !== 0).replace(/\\/g, '/');
      const unixMode = madeBy === 3 ? external >>> 16 : 0;
      entries.push({
        name,
        directory: name.endsWith('/'),
        symlink: (unixMode & S_IFMT) === S_IFLNK,
        encrypted: (flags & 0x1) !== 0,
        method,
        compressedSize,
        size: entrySize,
        crc32,
        localHeaderOffset,
      });
      p = end;
    }
    return entries;
  } finally {
    await handle.close();
  }
}

/**
 * Why an entry's path cannot be taken, or null: an absolute path, a drive letter, a `..` step,
 * a NUL, a symbolic link, encryption, or a compression method other than stored and deflated.
 */
export function entryProblem(entry: ZipEntry): string | null {
  const { name } = entry;
  if (!name || name.includes('\0')) return 'has an empty or unreadable name';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'has an absolute path';
  if (name.split('/').some((part) => part === '..')) return 'has a path that leaves the archive (..)';
  if (entry.symlink) return 'is a symbolic link';
  if (entry.encrypted) return 'is encrypted';
  if (!entry.directory && entry.method !== 0 && entry.method !== 8) return `is compressed with method ${entry.method} (only stored and deflated entries are taken)`;
  return null;
}

/** The entry's bytes, inflated as they are read; more or fewer than it declares, or a CRC mismatch, fails the stream. */
export async function openZipEntry(file: string, entry: ZipEntry): Promise<Readable> {
  const handle = await fs.open(file, 'r');
  let header: Buffer;
  try {
    header = Buffer.alloc(30);
    const { bytesRead } = await handle.read(header, 0, 30, entry.localHeaderOffset);
    if (bytesRead < 30 || header.readUInt32LE(0) !== LOCAL) throw new ZipError(`${entry.name}: its local header is damaged`);
  } finally {
    await handle.close();
  }
  const start = entry.localHeaderOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  const raw = entry.compressedSize ? createReadStream(file, { start, end: start + entry.compressedSize - 1 }) : Readable.from([]);
  let received = 0;
  let crc = 0;
  const checked = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      if (received > entry.size) return done(new ZipError(`${entry.name} holds more than the ${entry.size} bytes it declares`));
      crc = zlib.crc32(chunk, crc);
      done(null, chunk);
    },
    flush(done) {
      if (received !== entry.size) return done(new ZipError(`${entry.name} holds ${received} bytes, not the ${entry.size} it declares`));
      if (crc !== entry.crc32) return done(new ZipError(`${entry.name} is damaged (its CRC-32 does not match)`));
      done();
    },
  });
  const source = entry.method === 8 ? raw.pipe(zlib.createInflateRaw()) : raw;
  const fail = (err: Error) => checked.destroy(err instanceof ZipError ? err : new ZipError(`${entry.name} cannot be read: ${err.message}`));
  raw.on('error', fail);
  source.on('error', fail);
  return source.pipe(checked);
}

function extraField(extra: Buffer, id: number): Buffer | undefined {
  for (let p = 0; p + 4 <= extra.length; ) {
    const fieldId = extra.readUInt16LE(p);
    const length = extra.readUInt16LE(p + 2);
    if (fieldId === id) return extra.subarray(p + 4, p + 4 + length);
    p += 4 + length;
  }
  return undefined;
}

/** UTF-8 where the bytes are (whatever the flag says); else Latin-1, which reads the DOS code pages' ASCII half the same. A flagged name that is not UTF-8 is unreadable. */
function decodeName(bytes: Buffer, utf8: boolean): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    if (utf8) return '';
    return bytes.toString('latin1');
  }
}

function safeNumber(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError('it declares a size or offset too large to be real');
  return Number(v);
}
