import crypto from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { JobFailure } from '../../errors.js';
import { type Answer, type HttpOptions, httpGet, statusFailure } from './http-get.js';

export interface Download {
  url: URL;
  /** Where the bytes go; kept when an attempt fails, so that the next one resumes from there. */
  part: string;
  /** What messages call it (its path in the model, or the URL). */
  label: string;
  /** Its size, when a listing says. */
  size?: number;
  /** The most bytes it may be. */
  maxBytes: number;
  /** A git blob id to check it against (the hub's small files, which have no sha256). */
  gitOid?: string | null;
  /** Said after a 401 or 403 (what to do about a gated repository). */
  refusedHint?: string;
}

export interface Downloaded {
  size: number;
  sha256: string;
  /** Whether it matched the git blob id it was given (undefined when none). */
  gitOidMatches?: boolean;
  /** Bytes an earlier attempt had fetched, not fetched again. */
  resumedFrom: number;
  /** The headers of the first answer, when a request was made (the hub's X-Linked-Etag is there). */
  first: Headers | undefined;
}

export interface DownloadEvents {
  /** Once the size is known (undefined when the server does not say), before any byte is written; throwing stops it. */
  sized(size: number | undefined, have: number): Promise<void> | void;
  bytes(n: number): void;
}

/** What an earlier attempt was sent, so that a file changed since is not resumed onto. */
interface Validators {
  etag: string | null;
  lastModified: string | null;
}

const validatorsFile = (part: string) => `${part}.validators.json`;

/**
 * Downloads one file to `part` without holding it in memory, hashing it on the way. Bytes an
 * earlier attempt left there are kept and asked for no more: the request says `Range: bytes=N-`
 * (with `If-Range`, for servers whose files may change), and a server that ignores it, or sends
 * another range, is read from the start instead.
 */
export async function downloadFile(d: Download, http: HttpOptions, events: DownloadEvents): Promise<Downloaded> {
  await fs.mkdir(path.dirname(d.part), { recursive: true });
  let have = (await fs.stat(d.part).catch(() => undefined))?.size ?? 0;
  const validators = await readValidators(d.part);
  // Without a listed size or a validator there is no telling whether those bytes are still the file's.
  if ((d.size !== undefined && have > d.size) || (d.size === undefined && !validators)) have = await restart(d.part);
  let hashes = await hashesOf(d, have);
  if (d.size !== undefined && have === d.size) {
    await events.sized(d.size, have);
    return finish(d, hashes, have, have, undefined);
  }

  for (let tries = 0; ; tries++) {
    const ranged = have > 0;
    const condition = validators?.etag && !validators.etag.startsWith('W/') ? validators.etag : validators?.lastModified;
    const headers: Record<string, string> = { 'accept-encoding': 'identity', ...(ranged ? { range: `bytes=${have}-`, ...(condition ? { 'if-range': condition } : {}) } : {}) };
    const answer = await httpGet(d.url, headers, http);
    const { response } = answer;
    const range = parseContentRange(response.headers.get('content-range'));
    if (response.status === 416 && ranged && range?.total === have) {
      await response.body?.cancel();
      answer.done();
      await events.sized(have, have);
      return finish(d, hashes, have, have, answer.first);
    }
    const usable = response.status === 200 || (response.status === 206 && ranged && range?.start === have);
    if (!usable) {
      await response.body?.cancel();
      answer.done();
      if ((response.status === 206 || response.status === 416) && tries === 0) {
        have = await restart(d.part);
        hashes = await hashesOf(d, 0);
        continue;
      }
      throw statusFailure(response.status, d.label, response.status === 401 || response.status === 403 ? d.refusedHint : '');
    }
    if (response.status === 200 && have > 0) {
      have = await restart(d.part);
      hashes = await hashesOf(d, 0);
    }
    const length = response.headers.get('content-length');
    const total = range?.total ?? (length !== null ? have + Number(length) : undefined);
    try {
      if (d.size !== undefined && total !== undefined && total !== d.size) {
        throw new JobFailure('SOURCE_INVALID', `${d.label}: the server sends ${total} bytes, its listing says ${d.size}`, false);
      }
      if ((total ?? 0) > d.maxBytes) throw tooLarge(d, total!);
      await events.sized(d.size ?? total, have);
      await writeValidators(d.part, { etag: response.headers.get('etag'), lastModified: response.headers.get('last-modified') });
      const written = await receive(d, answer, hashes, have, events);
      if (total !== undefined && have + written !== total) {
        throw new JobFailure('DOWNLOAD_FAILED', `${d.label}: the transfer ended at byte ${have + written} of ${total}`, true);
      }
      return finish(d, hashes, have + written, have, answer.first);
    } catch (err) {
      await response.body?.cancel().catch(() => undefined);
      throw answer.failure(err, d.label);
    } finally {
      answer.done();
    }
  }
}

/** Writes gather this much: few large writes while the network outruns the disk. */
const WRITE_BYTES = 1024 * 1024;
/** What arrived is written within this long even when less came, so a cut transfer keeps it. */
const WRITE_WITHIN_MS = 50;

/**
 * Appends the body to the part file, hashing and counting it; returns the bytes written. Writes
 * gather 1 MiB, and whatever arrived is written within 50 ms even when a transfer stalls: what
 * was received is on disk when it is cut, and the next attempt resumes from the last byte
 * received.
 */
async function receive(d: Download, answer: Answer, hashes: Hashes, have: number, events: DownloadEvents): Promise<number> {
  let received = 0;
  let unwritten: Buffer[] = [];
  let unwrittenBytes = 0;
  let writing: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let writeError: unknown;
  const file = await fs.open(d.part, have > 0 ? 'a' : 'w');
  const flush = async () => {
    clearTimeout(timer);
    timer = undefined;
    while (writing) await writing;
    if (!unwritten.length) return;
    const chunks = unwritten;
    unwritten = [];
    unwrittenBytes = 0;
    writing = file.writev(chunks).then(() => void (writing = undefined));
    await writing;
  };
  const flushSoon = () => {
    timer ??= setTimeout(() => void flush().catch((err: unknown) => (writeError ??= err)), WRITE_WITHIN_MS);
  };
  let failure: unknown;
  try {
    for await (const chunk of Readable.fromWeb(answer.response.body as NodeReadableStream<Uint8Array>) as AsyncIterable<Buffer>) {
      if (writeError) throw writeError;
      if (have + received + chunk.length > d.maxBytes) throw tooLarge(d, have + received + chunk.length);
      received += chunk.length;
      hashes.sha256.update(chunk);
      hashes.sha1?.update(chunk);
      unwritten.push(chunk);
      unwrittenBytes += chunk.length;
      if (unwrittenBytes >= WRITE_BYTES) await flush();
      else flushSoon();
      answer.alive();
      events.bytes(chunk.length);
    }
  } catch (err) {
    failure = err;
  }
  try {
    if (!writeError) await flush();
  } catch (err) {
    writeError ??= err;
  }
  await file.close();
  failure ??= writeError;
  if (failure === undefined) return received;
  if ((failure as NodeJS.ErrnoException).code === 'ENOSPC') throw new JobFailure('DISK_FULL', `${d.label}: the disk of the install folder (KILN_INSTALL_DIR) is full`, false);
  throw answer.failure(failure, `${d.label}: the transfer stopped at byte ${have + received}`);
}

interface Hashes {
  sha256: crypto.Hash;
  /** Of the git blob, when there is an id to check. */
  sha1: crypto.Hash | undefined;
}

/** The hashes of the first `have` bytes already in the part file. */
async function hashesOf(d: Download, have: number): Promise<Hashes> {
  const hashes: Hashes = {
    sha256: crypto.createHash('sha256'),
    sha1: d.gitOid && d.size !== undefined ? crypto.createHash('sha1').update(`blob ${d.size}\0`) : undefined,
  };
  if (have > 0) {
    for await (const chunk of createReadStream(d.part, { end: have - 1 })) {
      hashes.sha256.update(chunk as Buffer);
      hashes.sha1?.update(chunk as Buffer);
    }
  }
  return hashes;
}

function finish(d: Download, hashes: Hashes, size: number, resumedFrom: number, first: Headers | undefined): Downloaded {
  return {
    size,
    sha256: hashes.sha256.digest('hex'),
    ...(hashes.sha1 ? { gitOidMatches: hashes.sha1.digest('hex') === d.gitOid } : {}),
    resumedFrom,
    first,
  };
}

async function restart(part: string): Promise<0> {
  await fs.writeFile(part, '');
  await fs.rm(validatorsFile(part), { force: true });
  return 0;
}

/** What the server said of the file last time; undefined when it said nothing that tells versions apart. */
async function readValidators(part: string): Promise<Validators | undefined> {
  try {
    const v = JSON.parse(await fs.readFile(validatorsFile(part), 'utf8')) as Validators;
    return v.etag || v.lastModified ? v : undefined;
  } catch {
    return undefined;
  }
}

const writeValidators = (part: string, v: Validators) => fs.writeFile(validatorsFile(part), JSON.stringify(v));

// `bytes 100-199/1000`, or `bytes */1000` with a 416.
function parseContentRange(header: string | null): { start: number | null; total: number | null } | undefined {
  const m = /^bytes (?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(header?.trim() ?? '');
  if (!m) return undefined;
  return { start: m[1] !== undefined ? Number(m[1]) : null, total: m[2] !== '*' ? Number(m[2]) : null };
}

const tooLarge = (d: Download, bytes: number) =>
  new JobFailure('TOO_LARGE', `${d.label} is larger (${bytes} bytes) than the ${Math.floor(d.maxBytes / 1024 / 1024)} MiB a model may be (KILN_MAX_UPLOAD_MB)`, false);
