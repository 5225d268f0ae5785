import zlib from 'node:zlib';

/**
 * Adds UTF-8 text chunks (iTXt) to a PNG, right after its header chunk, the way image tools
 * expect generation parameters ("parameters", "prompt", …) to be stored.
 */
export function withPngText(png: Buffer, entries: Record<string, string>): Buffer {
  const ihdrEnd = 8 + 8 + png.readUInt32BE(8) + 4;
  const chunks = Object.entries(entries).map(([keyword, text]) =>
    chunk('iTXt', Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0, 0, 0, 0, 0]), Buffer.from(text, 'utf8')])),
  );
  return Buffer.concat([png.subarray(0, ihdrEnd), ...chunks, png.subarray(ihdrEnd)]);
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** Reads a PNG's iTXt/tEXt chunks (for tests and tools). */
export function readPngText(png: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (let pos = 8; pos + 8 <= png.length; ) {
    const length = png.readUInt32BE(pos);
    const type = png.toString('latin1', pos + 4, pos + 8);
    const data = png.subarray(pos + 8, pos + 8 + length);
    if (type === 'tEXt' || type === 'iTXt') {
      const nul = data.indexOf(0);
      const keyword = data.toString('latin1', 0, nul);
      if (type === 'tEXt') out[keyword] = data.toString('latin1', nul + 1);
      else {
        let p = nul + 3; // compression flag and method
        p = data.indexOf(0, p) + 1; // language tag
        p = data.indexOf(0, p) + 1; // translated keyword
        out[keyword] = data.toString('utf8', p);
      }
    }
    pos += 12 + length;
  }
  return out;
}
