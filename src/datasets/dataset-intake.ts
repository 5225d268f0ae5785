import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { DatasetImageRow } from '../db/entities/dataset.js';
import { badInput, KilnError, KilnRefusals } from '../errors.js';
import { folderSha256 } from '../models/content-hash.js';
import { writeDatasetManifest } from '../trainers/dataset-folder.js';
import { canonicalImage, ImageRefusal } from './image-intake.js';
import { entryProblem, openZipEntry, readZipDirectory, ZipError } from '../archives/zip-reader.js';

/** A file a client sent for a dataset, on this machine. */
export interface SentFile {
  /** The name the client gave it. */
  name: string;
  path: string;
  sizeBytes: number;
  /** Its place in the request, for errors (`files.2`). */
  field: string;
}

export interface DatasetLimits {
  maxFileBytes: number;
  maxBytes: number;
  minImages: number;
  maxImages: number;
  maxPixels: number;
}

export interface BuiltDataset {
  images: DatasetImageRow[];
  /** Of its sorted (sha256, path) list: what trainers record as the dataset's hash. */
  sha256: string;
  sizeBytes: number;
}

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp']);
const CAPTION_EXT = '.txt';
const MAX_CAPTION_BYTES = 64 * 1024;
/** What archivers put in zips beside the files (macOS resource forks, Finder and Explorer caches). */
const JUNK = (entry: string) => entry.startsWith('__MACOSX/') || ['.DS_Store', 'Thumbs.db', 'desktop.ini'].includes(path.posix.basename(entry));

/** One image or caption to take, loose or inside a zip. */
interface Candidate {
  /** Its path in the dataset's namespace: a loose file's name, or an entry's path in its zip. */
  name: string;
  /** How errors name it. */
  label: string;
  field: string;
  sizeBytes: number;
  read(): Promise<Buffer>;
}

export const tooLarge = (field: string, problem: string, limitBytes: number) =>
  new KilnError('PAYLOAD_TOO_LARGE', `${field} ${problem}`, { field, limitBytes });
export const mib = (bytes: number) => `${+(bytes / 1024 / 1024).toFixed(1)} MiB`;

/**
 * Checks everything a client sent for a dataset and writes the canonical folder into `outDir`
 * (`001.png`, `001.txt`, …, `manifest.json`), refusing with the contract's errors naming each
 * file refused (`files.<i>`, and the entry inside a zip), every file checked before the refusal
 * so that all can be fixed at once (totals and counts refuse at once): names and types (jpg,
 * jpeg, png, webp, txt; zips of them, their entries checked as paths first: no absolute paths,
 * no `..`, no links, their count and unpacked size capped), sizes, a caption without its
 * image, the number of images, each image (see canonicalImage), its short side against
 * `minSide`, duplicates by content, and captions as UTF-8 text. Images are numbered in the
 * order of their names.
 */
export async function buildDatasetFolder(files: SentFile[], limits: DatasetLimits, outDir: string, minSide?: number | null): Promise<BuiltDataset> {
  const sent = files.reduce((n, f) => n + f.sizeBytes, 0);
  if (sent > limits.maxBytes) throw tooLarge('files', `add up to ${mib(sent)}; a dataset takes at most ${mib(limits.maxBytes)}`, limits.maxBytes);
  if (!files.length) throw badInput('files', 'holds no files');
  const refused = new Refusals();
  const candidates: Candidate[] = [];
  for (const f of files) candidates.push(...(await refused.unless(() => expand(f, limits), [])));
  const content = candidates.reduce((n, c) => n + c.sizeBytes, 0);
  if (content > limits.maxBytes) throw tooLarge('files', `unpack to ${mib(content)}; a dataset takes at most ${mib(limits.maxBytes)}`, limits.maxBytes);

  const images = new Map<string, Candidate>();
  const captions = new Map<string, Candidate>();
  const names = new Set<string>();
  for (const c of candidates) {
    if (names.has(c.name)) {
      refused.add(badInput(c.field, `${c.label}: another file has the same name`));
      continue;
    }
    names.add(c.name);
    const ext = path.posix.extname(c.name).toLowerCase();
    const stem = c.name.slice(0, c.name.length - ext.length);
    const into = ext === CAPTION_EXT ? captions : images;
    const other = into.get(stem);
    if (other) refused.add(badInput(c.field, `${c.label}: ${other.label} has the same name but for its extension (captions are matched to images by name)`));
    else into.set(stem, c);
  }
  for (const [stem, caption] of captions) {
    if (!images.has(stem)) refused.add(badInput(caption.field, `${caption.label} is a caption without an image of the same name`));
  }
  // Too many images is refused at once (before decoding them all); too few only when no file was
  // refused, since the files refused may be what is missing.
  if (images.size > limits.maxImages || (images.size < limits.minImages && !refused.any)) {
    throw badInput('files', `hold ${images.size} image(s); a dataset has ${limits.minImages} to ${limits.maxImages}`);
  }

  await fs.mkdir(outDir, { recursive: true });
  const stems = [...images.keys()].sort();
  const width = Math.max(3, String(stems.length).length);
  const seen = new Map<string, Candidate>();
  const built: DatasetImageRow[] = [];
  for (const [i, stem] of stems.entries()) {
    const source = images.get(stem)!;
    const captionFile = captions.get(stem);
    const caption = captionFile ? await refused.unless(() => readCaption(captionFile), '') : '';
    const image = await refused.unless(() => readImage(source, limits.maxPixels), null);
    if (!image) continue;
    if (minSide && Math.min(image.width, image.height) < minSide) {
      refused.add(badInput(source.field, `${source.label} is ${image.width}×${image.height}; images must be at least ${minSide} pixels on their short side for training at ${minSide}`));
      continue;
    }
    const twin = seen.get(image.sha256);
    if (twin) {
      refused.add(badInput(source.field, `${source.label} is the same picture as ${twin.label} (sha256 ${image.sha256.slice(0, 12)}…)`));
      continue;
    }
    seen.set(image.sha256, source);
    // Once something is refused, the rest is only checked: nothing of this dataset will be kept.
    if (refused.any) continue;
    const file = `${String(i + 1).padStart(width, '0')}.png`;
    await fs.writeFile(path.join(outDir, file), image.png);
    if (caption) await fs.writeFile(path.join(outDir, file.replace(/\.png$/, '.txt')), caption);
    built.push({ file, name: source.name, width: image.width, height: image.height, sha256: image.sha256, caption });
  }
  refused.throwAny();
  const manifest = await writeDatasetManifest(outDir);
  const manifestBytes = (await fs.stat(path.join(outDir, 'manifest.json'))).size;
  return { images: built, sha256: folderSha256(manifest.files), sizeBytes: manifest.files.reduce((n, f) => n + f.sizeBytes, manifestBytes) };
}

/** The refusals of a dataset's files, gathered while every file is checked. */
class Refusals {
  private readonly list: KilnError[] = [];

  get any(): boolean {
    return this.list.length > 0;
  }

  add(refusal: KilnError): void {
    this.list.push(refusal);
  }

  /** What `check` returns, or `otherwise` once its refusal is noted; errors that are not refusals go on. */
  async unless<T>(check: () => Promise<T>, otherwise: T): Promise<T> {
    try {
      return await check();
    } catch (err) {
      if (!(err instanceof KilnError)) throw err;
      this.add(err);
      return otherwise;
    }
  }

  throwAny(): void {
    if (this.list.length === 1) throw this.list[0];
    if (this.list.length) throw new KilnRefusals(this.list);
  }
}

/** A sent file as the images and captions it holds: itself, or a zip's entries. */
async function expand(f: SentFile, limits: DatasetLimits): Promise<Candidate[]> {
  if (!f.name || f.name.length > 255 || /[/\\\0]/.test(f.name) || f.name === '.' || f.name === '..') {
    throw badInput(f.field, `${JSON.stringify(f.name)} is not a plain file name`);
  }
  const ext = path.extname(f.name).toLowerCase();
  if (ext !== '.zip') {
    checkType(f.name, f.name, f.field);
    if (f.sizeBytes > limits.maxFileBytes) throw tooLarge(f.field, `${f.name} is ${mib(f.sizeBytes)}; a file may be at most ${mib(limits.maxFileBytes)}`, limits.maxFileBytes);
    return [{ name: f.name, label: f.name, field: f.field, sizeBytes: f.sizeBytes, read: () => fs.readFile(f.path) }];
  }
  const maxEntries = 2 * limits.maxImages + 100;
  let entries;
  try {
    entries = await readZipDirectory(f.path, maxEntries);
  } catch (err) {
    if (err instanceof ZipError) throw badInput(f.field, `${f.name} cannot be taken: ${err.message}`);
    throw err;
  }
  const out: Candidate[] = [];
  let unpacked = 0;
  for (const entry of entries) {
    const label = `${entry.name} in ${f.name}`;
    const problem = entryProblem(entry);
    if (problem) throw badInput(f.field, `${label} ${problem}`);
    if (entry.directory || JUNK(entry.name)) continue;
    checkType(entry.name, label, f.field);
    if (entry.size > limits.maxFileBytes) throw tooLarge(f.field, `${label} is ${mib(entry.size)}; a file may be at most ${mib(limits.maxFileBytes)}`, limits.maxFileBytes);
    unpacked += entry.size;
    if (unpacked > limits.maxBytes) throw tooLarge(f.field, `${f.name} unpacks to more than ${mib(limits.maxBytes)}, what a dataset takes at most`, limits.maxBytes);
    out.push({
      name: entry.name,
      label,
      field: f.field,
      sizeBytes: entry.size,
      read: async () => {
        try {
          return await collect(await openZipEntry(f.path, entry));
        } catch (err) {
          if (err instanceof ZipError) throw badInput(f.field, `${label} cannot be unpacked: ${err.message}`);
          throw err;
        }
      },
    });
  }
  return out;
}

function checkType(name: string, label: string, field: string) {
  const ext = path.posix.extname(name).toLowerCase();
  if (ext === '.zip') throw badInput(field, `${label} is a zip inside a zip; send its files, or it, on their own`);
  if (!IMAGE_EXT.has(ext) && ext !== CAPTION_EXT) throw badInput(field, `${label} is neither a .jpg, .jpeg, .png or .webp image nor a .txt caption`);
  if (path.posix.basename(name, ext) === '') throw badInput(field, `${label} has no name before its extension`);
}

/** An image candidate decoded and re-encoded (see canonicalImage), refused with its name when it cannot be taken. */
async function readImage(c: Candidate, maxPixels: number) {
  try {
    return await canonicalImage(await c.read(), maxPixels);
  } catch (err) {
    if (err instanceof ImageRefusal) throw badInput(c.field, `${c.label} ${err.message}`);
    throw err;
  }
}

/** A caption file's text: UTF-8 (a byte-order mark dropped), no control characters but tabs and line breaks, trimmed. */
async function readCaption(c: Candidate): Promise<string> {
  if (c.sizeBytes > MAX_CAPTION_BYTES) throw badInput(c.field, `${c.label} is ${mib(c.sizeBytes)}; a caption may be at most 64 KiB`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(await c.read());
  } catch (err) {
    if (err instanceof KilnError) throw err;
    throw badInput(c.field, `${c.label} is not UTF-8 text`);
  }
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) throw badInput(c.field, `${c.label} holds control characters; a caption is plain text`);
  return text.trim();
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
