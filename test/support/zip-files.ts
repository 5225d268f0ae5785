/**
 * Zip archives written byte by byte, so that tests can make both ordinary ones and the hostile
 * ones real archivers refuse to write: entries with absolute paths or `..`, symbolic links,
 * sizes that lie, damaged data, thousands of entries.
 */
import zlib from 'node:zlib';

export interface ZipSpec {
  name: string;
  data?: Uint8Array | string;
  /** Deflate it (default) or store it. */
  store?: boolean;
  /** A Unix symbolic link whose target is `data`. */
  symlink?: boolean;
  /** Declare this uncompressed size instead of the real one. */
  declaredSize?: number;
  /** Write this CRC-32 instead of the real one. */
  crc32?: number;
}

export function zipOf(entries: ZipSpec[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : Buffer.from(e.data ?? []);
    const body = e.store || e.symlink || e.name.endsWith('/') ? data : zlib.deflateRawSync(data);
    const method = body === data ? 0 : 8;
    const crc = e.crc32 ?? zlib.crc32(data);
    const size = e.declaredSize ?? data.length;
    const name = Buffer.from(e.name, 'utf8');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    const mode = e.symlink ? 0o120777 : e.name.endsWith('/') ? 0o40755 : 0o100644;
    central.writeUInt32LE((mode << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}
