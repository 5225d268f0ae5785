import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { type ArchiveEntry, InvalidArchive } from './archive-entry.js';

const BLOCK = 512;
/** Long names and pax headers hold a path or two: anything larger is not a model archive's. */
const MAX_META_BYTES = 1024 * 1024;

/**
 * The entries of a tar file (gzip-compressed or not), read in one pass: ustar, pax and GNU long
 * names, sizes in octal or base-256. Each entry's content must be read (or left) before the next
 * entry is asked for.
 */
export async function* readTar(file: string, gzip: boolean): AsyncGenerator<ArchiveEntry> {
  const raw = createReadStream(file);
  const stream = gzip ? raw.pipe(zlib.createGunzip()) : raw;
  if (gzip) raw.on('error', (err) => stream.destroy(err));
  const bytes = new ByteQueue(stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  try {
    for (;;) {
      const header = await bytes.take(BLOCK);
      if (!header || header.every((b) => b === 0)) return;
      if (checksumOf(header) !== number(header, 148, 8)) throw new InvalidArchive('a tar header fails its checksum');
      const flag = header[156] === 0 ? '0' : String.fromCharCode(header[156]!);
      const size = pax.size !== undefined ? Number(pax.size) : number(header, 124, 12);
      if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArchive('a tar entry has no valid size');
      const padding = (BLOCK - (size % BLOCK)) % BLOCK;

      if ('xgLK'.includes(flag)) {
        if (size > MAX_META_BYTES) throw new InvalidArchive('a tar header is too large');
        const content = await bytes.take(size + padding);
        if (!content) throw new InvalidArchive('it ends early');
        if (flag === 'x') pax = { ...pax, ...parsePax(content.subarray(0, size)) };
        if (flag === 'L') longName = content.subarray(0, size).toString('utf8').replace(/\0+$/, '');
        continue;
      }
      const name = pax.path ?? longName ?? headerName(header);
      pax = {};
      longName = undefined;
      const type = flag === '0' || flag === '7' ? 'file' : flag === '5' ? 'directory' : flag === '1' || flag === '2' ? 'link' : 'other';
      const content = bytes.slice(size);
      yield { name, type, size, open: async () => content.readable };
      await bytes.skip(content.left() + padding);
    }
  } finally {
    stream.destroy();
  }
}

function headerName(h: Buffer): string {
  const field = (at: number, length: number) => h.toString('utf8', at, at + length).replace(/\0.*$/s, '');
  const name = field(0, 100);
  const prefix = h.toString('latin1', 257, 262) === 'ustar' ? field(345, 155) : '';
  return prefix ? `${prefix}/${name}` : name;
}

/** Octal text, or base-256 when the field's first bit is set (GNU, for sizes past 8 GiB). */
function number(h: Buffer, at: number, length: number): number {
  if (h[at]! & 0x80) {
    let v = h[at]! & 0x7f;
    for (let i = 1; i < length; i++) v = v * 256 + h[at + i]!;
    return v;
  }
  const text = h.toString('latin1', at, at + length).replace(/[\0 ]+/g, '');
  return text ? parseInt(text, 8) : 0;
}

function checksumOf(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum;
}

/** pax records: `<length> <key>=<value>\n`. */
function parsePax(content: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let p = 0;
  while (p < content.length) {
    const space = content.indexOf(0x20, p);
    const length = Number(content.toString('latin1', p, space));
    if (space < 0 || !Number.isInteger(length) || length <= 0 || p + length > content.length) throw new InvalidArchive('a pax header is damaged');
    const record = content.toString('utf8', space + 1, p + length - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    p += length;
  }
  return out;
}

/** Exact-length reads from a stream of chunks. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const { value, done } = await this.source.next();
    if (done) {
      this.ended = true;
      return false;
    }
    this.chunks.push(value);
    this.length += value.length;
    return true;
  }

  /** Exactly `n` bytes, or null when the stream ends before a first byte (a short read is an error). */
  async take(n: number): Promise<Buffer | null> {
    while (this.length < n && (await this.pull()));
    if (this.length === 0 && n > 0) return null;
    if (this.length < n) throw new InvalidArchive('it ends early');
    const all = Buffer.concat(this.chunks);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.length -= n;
    return all.subarray(0, n);
  }

  /** Up to `max` bytes of what is buffered, pulling a chunk when none is. */
  private async some(max: number): Promise<Buffer> {
    if (!this.length && !(await this.pull())) throw new InvalidArchive('it ends early');
    const first = this.chunks[0]!;
    const out = first.length > max ? first.subarray(0, max) : first;
    if (out === first) this.chunks.shift();
    else this.chunks[0] = first.subarray(max);
    this.length -= out.length;
    return out;
  }

  /** The next `n` bytes as a stream, and how many of them it has not read yet. */
  slice(n: number): { readable: Readable; left(): number } {
    let left = n;
    const queue = this;
    async function* chunks() {
      while (left > 0) {
        const chunk = await queue.some(left);
        left -= chunk.length;
        yield chunk;
      }
    }
    return { readable: Readable.from(chunks(), { objectMode: false }), left: () => left };
  }

  async skip(n: number): Promise<void> {
    while (n > 0) n -= (await this.some(n)).length;
  }
}
