import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { type ArchiveEntry, InvalidArchive } from './archive-entry.js';

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_COMMENT = 0xffff;
/** A central directory larger than this is no model's. */
const MAX_DIRECTORY_BYTES = 64 * 1024 * 1024;

const u64 = (b: Buffer, at: number) => {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidArchive('a size or offset in it is out of range');
  return Number(v);
};

/**
 * The entries of a zip file, read from its central directory (zip64 included), each with a way
 * to stream its content (stored or deflated). Only what a model archive needs: one disk, no
 * encryption.
 */
export async function readZip(file: string): Promise<ArchiveEntry[]> {
  const handle = await fs.open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    const read = async (at: number, length: number) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buf, 0, length, at);
      if (bytesRead !== length) throw new InvalidArchive('it ends early');
      return buf;
    };
    const tailLength = Math.min(size, 22 + MAX_COMMENT);
    const tail = await read(size - tailLength, tailLength);
    let at = -1;
    for (let i = tail.length - 22; i >= 0; i--) if (tail.readUInt32LE(i) === EOCD) { at = i; break; }
    if (at < 0) throw new InvalidArchive('it has no zip directory');
    const eocdOffset = size - tailLength + at;
    if (tail.readUInt16LE(at + 4) !== 0 || tail.readUInt16LE(at + 6) !== 0) throw new InvalidArchive('it spans several disks');
    let count = tail.readUInt16LE(at + 10);
    let dirSize = tail.readUInt32LE(at + 12);
    let dirOffset = tail.readUInt32LE(at + 16);
    if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
      const locator = eocdOffset >= 20 ? await read(eocdOffset - 20, 20) : undefined;
      if (locator?.readUInt32LE(0) !== ZIP64_LOCATOR) throw new InvalidArchive('its zip64 directory is missing');
      const record = await read(u64(locator, 8), 56);
      if (record.readUInt32LE(0) !== ZIP64_EOCD) throw new InvalidArchive('its zip64 directory is damaged');
      count = u64(record, 32);
      dirSize = u64(record, 40);
      dirOffset = u64(record, 48);
    }
    if (dirSize > MAX_DIRECTORY_BYTES || dirOffset + dirSize > size) throw new InvalidArchive('its directory is damaged');
    const dir = await read(dirOffset, dirSize);
    const entries: ArchiveEntry[] = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > dir.length || dir.readUInt32LE(p) !== CENTRAL) throw new InvalidArchive('its directory is damaged');
      const madeBy = dir.readUInt16LE(p + 4) >> 8;
      const flags = dir.readUInt16LE(p + 8);
      const method = dir.readUInt16LE(p + 10);
      const crc32 = dir.readUInt32LE(p + 16);
      let compressed = dir.readUInt32LE(p + 20);
      let uncompressed = dir.readUInt32LE(p + 24);
      const nameLength = dir.readUInt16LE(p + 28);
      const extraLength = dir.readUInt16LE(p + 30);
      const commentLength = dir.readUInt16LE(p + 32);
      const mode = dir.readUInt32LE(p + 38) >>> 16;
      let local = dir.readUInt32LE(p + 42);
      const name = dir.toString(flags & 0x800 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLength);
      // zip64 sizes and offset, for the fields that overflowed, in this order.
      const extra = dir.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength);
      for (let e = 0; e + 4 <= extra.length; e += 4 + extra.readUInt16LE(e + 2)) {
        if (extra.readUInt16LE(e) !== 0x0001) continue;
        let f = e + 4;
        if (uncompressed === 0xffffffff) (uncompressed = u64(extra, f)), (f += 8);
        if (compressed === 0xffffffff) (compressed = u64(extra, f)), (f += 8);
        if (local === 0xffffffff) local = u64(extra, f);
      }
      p += 46 + nameLength + extraLength + commentLength;

      const unixType = madeBy === 3 ? mode & 0o170000 : 0;
      const type = name.endsWith('/') || unixType === 0o040000 ? 'directory' : unixType === 0o120000 ? 'link' : unixType && unixType !== 0o100000 ? 'other' : 'file';
      if (type === 'file' && flags & 0x1) throw new InvalidArchive(`${name} is encrypted`);
      if (type === 'file' && method !== 0 && method !== 8) throw new InvalidArchive(`${name} is compressed with method ${method}; Kiln reads stored and deflated entries`);
      const entryOffset = local;
      const entryCompressed = compressed;
      entries.push({
        name,
        type,
        size: uncompressed,
        crc32,
        open: async () => {
          const header = await readAt(file, entryOffset, 30);
          if (header.readUInt32LE(0) !== LOCAL) throw new InvalidArchive(`${name}'s entry is damaged`);
          const start = entryOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
          if (start + entryCompressed > size) throw new InvalidArchive(`${name}'s entry is damaged`);
          const raw = entryCompressed ? createReadStream(file, { start, end: start + entryCompressed - 1 }) : Readable.from([]);
          if (method !== 8) return raw;
          const inflate = zlib.createInflateRaw();
          raw.on('error', (err: Error) => inflate.destroy(err));
          return raw.pipe(inflate);
        },
      });
    }
    return entries;
  } finally {
    await handle.close();
  }
}

async function readAt(file: string, at: number, length: number): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, at);
    if (bytesRead !== length) throw new InvalidArchive('it ends early');
    return buf;
  } finally {
    await handle.close();
  }
}
