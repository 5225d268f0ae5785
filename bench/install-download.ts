/**
 * What an install's download costs over a plain one: the same bytes from a loopback server,
 * fetched and written to disk (the anchor), then through Kiln's downloader (sha256 on the way,
 * every chunk on disk before the next is read, so a cut transfer resumes from its last byte),
 * then resumed from half-way (the half on disk is hashed again first). Prints MB/s and how far
 * the process's RSS rose above its start: a model is never held in memory.
 *
 *   npm run bench:install [-- --size-mb 256]
 */
import crypto from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { parseCommandLine, usageError } from '../src/cli/command-line.js';
import { downloadFile } from '../src/kinds/install/download-file.js';

const USAGE = `usage: npm run bench:install [-- --size-mb 256]
  --size-mb N   size of the file downloaded, in MiB (default 256)
  --help        this text`;
const { values } = parseCommandLine(USAGE, { 'size-mb': { type: 'string', default: '256' } });
const MiB = 1024 * 1024;
const sizeMiB = Number(values['size-mb']);
if (!Number.isInteger(sizeMiB) || sizeMiB < 1) usageError(USAGE, '--size-mb is a whole number of MiB, at least 1.');
const size = sizeMiB * MiB;
const block = crypto.randomBytes(MiB);
const expected = (() => {
  const h = crypto.createHash('sha256');
  for (let i = 0; i < size / MiB; i++) h.update(block);
  return h.digest('hex');
})();

// Serves `size` bytes made of one random MiB repeated, with ranges, without holding them.
const server = http.createServer((req, res) => {
  const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
  res.writeHead(start ? 206 : 200, { 'content-length': String(size - start), ...(start ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}) });
  void (async () => {
    for (let at = start; at < size; ) {
      const chunk = block.subarray(at % MiB);
      at += chunk.length;
      if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
    }
    res.end();
  })();
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/model.onnx`);
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-bench-install-'));

let peak = 0;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
async function measure(label: string, run: () => Promise<void>) {
  const base = process.memoryUsage().rss;
  peak = base;
  const t0 = performance.now();
  await run();
  const s = (performance.now() - t0) / 1000;
  console.log(`${label.padEnd(44)} ${(size / MiB / s).toFixed(0).padStart(6)} MiB/s   RSS +${((peak - base) / MiB).toFixed(0)} MiB`);
}

const http_ = { signal: new AbortController().signal, timeoutMs: 30_000, allowHttp: true };
const events = { sized: () => {}, bytes: () => {} };
console.log(`${size / MiB} MiB from a loopback server, ${os.cpus().length} CPUs`);
await measure('anchor: fetch piped to a file', async () => {
  const res = await fetch(url);
  await pipeline(Readable.fromWeb(res.body as NodeReadableStream<Uint8Array>), createWriteStream(path.join(dir, 'anchor')));
});
const part = path.join(dir, 'model.onnx.part');
await measure('Kiln downloadFile (sha256, resumable)', async () => {
  const got = await downloadFile({ url, part, label: 'model.onnx', size, maxBytes: size }, http_, events);
  if (got.sha256 !== expected) throw new Error('the download does not hash as it should');
});
await fs.truncate(part, size / 2);
await measure('Kiln downloadFile resumed from half-way', async () => {
  const got = await downloadFile({ url, part, label: 'model.onnx', size, maxBytes: size }, http_, events);
  if (got.sha256 !== expected || got.resumedFrom !== size / 2) throw new Error('the resumed download is not the file');
});
clearInterval(sampler);
server.close();
await fs.rm(dir, { recursive: true, force: true });
