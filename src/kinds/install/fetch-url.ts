import fs from 'node:fs/promises';
import path from 'node:path';
import { JobFailure } from '../../errors.js';
import type { TaskContext } from '../../jobs/kind.js';
import { formatOf, unpackArchive } from './archive.js';
import { checkRoom } from './disk-room.js';
import { type Downloaded, downloadFile } from './download-file.js';
import type { Fetched } from './fetched.js';
import { chooseFiles } from './file-choice.js';
import type { InstallParams } from './params.js';
import { describeSource, type InstallSource } from './source.js';
import { TransferProgress } from './transfer-progress.js';
import type { InstallWork } from './work-dir.js';

type UrlSource = Extract<InstallSource, { type: 'url' }>;

/**
 * Downloads one URL into the work folder, resuming what an earlier attempt left, and checks it
 * against the sha256 its server gives (the hub's `X-Linked-Etag` on its resolve URLs). A
 * .safetensors file is the model (a LoRA adapter); a zip or tar archive is unpacked and its
 * files chosen as a repository's are.
 */
export async function fetchFromUrl(ctx: TaskContext<InstallParams>, source: UrlSource, work: InstallWork): Promise<Fetched> {
  const settings = ctx.config.install;
  const p = ctx.job.params;
  const label = describeSource(source);
  const room = (incomingBytes: number, modelBytes: number) => checkRoom({ dir: work.dir, incomingBytes, modelBytes, config: ctx.config, storage: ctx.storage });
  const progress = new TransferProgress([{ path: label, size: undefined }], (r) => ctx.report('DOWNLOADING', r));
  ctx.report('DOWNLOADING', { message: `Downloading ${label}` });
  const part = `${work.download}.part`;
  // Finished by an earlier attempt: asked for again from its end, which a server answers with 416.
  await fs.rename(work.download, part).catch(() => undefined);
  let got: Downloaded;
  for (let fresh = false; ; fresh = true) {
    got = await downloadFile(
      { url: source.url, part, label, maxBytes: ctx.config.uploads.maxUploadBytes },
      { signal: ctx.signal, timeoutMs: settings.requestTimeoutMs, allowHttp: settings.allowHttp },
      {
        sized: async (size, have) => {
          await room(size === undefined ? 0 : size - have, size ?? 0);
          progress.started(label, size, have);
        },
        bytes: (n) => progress.bytes(label, n),
      },
    );
    const given = givenSha256(got.first);
    if (!given || given === got.sha256) break;
    await fs.rm(part, { force: true });
    if (got.resumedFrom > 0 && !fresh) continue;
    throw new JobFailure('CHECKSUM_MISMATCH', `${label} did not download intact: its sha256 is ${got.sha256}, its server gives ${given}`, false);
  }
  await fs.rename(part, work.download);
  progress.finished(label);

  const format = await formatOf(work.download);
  if (format === 'safetensors') {
    if (p.kind !== 'LORA') throw new JobFailure('UNSUPPORTED_SOURCE', `${label} is one .safetensors file, which Kiln installs as a LoRA adapter: give baseModelId`, false);
    return { dir: path.dirname(work.download), paths: [path.basename(work.download)], hashes: new Map([[path.basename(work.download), got.sha256]]) };
  }
  if (!format) throw new JobFailure('UNSUPPORTED_SOURCE', `${label} is neither a zip or tar archive nor a .safetensors file`, false);
  ctx.report('VERIFYING', { message: `Unpacking ${label}` });
  const unpacked = await unpackArchive(work.download, format, work.unpacked, {
    maxBytes: ctx.config.uploads.maxUploadBytes,
    signal: ctx.signal,
    room: (bytes) => room(bytes, bytes),
  });
  const paths = chooseFiles(unpacked.files.map((f) => f.path), p.kind, p.files);
  return { dir: unpacked.dir, paths, hashes: new Map(unpacked.files.map((f) => [f.path, f.sha256])) };
}

/** A sha256 the server states for what it sent: the hub's X-Linked-Etag (or an ETag that is one). */
function givenSha256(headers: Headers | undefined): string | undefined {
  const tag = (headers?.get('x-linked-etag') ?? headers?.get('etag'))?.replace(/^W\//, '').replace(/"/g, '');
  return tag && /^[0-9a-f]{64}$/.test(tag) ? tag : undefined;
}
