import fs from 'node:fs/promises';
import path from 'node:path';
import { JobFailure } from '../../errors.js';
import type { TaskContext } from '../../jobs/kind.js';
import { checkRoom } from './disk-room.js';
import { downloadFile } from './download-file.js';
import type { Fetched } from './fetched.js';
import { chooseFiles } from './file-choice.js';
import { HubClient, type HubFile } from './hub-client.js';
import type { InstallParams } from './params.js';
import { describeSource, type InstallSource } from './source.js';
import { TransferProgress } from './transfer-progress.js';
import type { InstallWork } from './work-dir.js';

type HubSource = Extract<InstallSource, { type: 'hub' }>;

/**
 * Downloads the files a model needs of a hub repository, at the commit its revision names,
 * KILN_INSTALL_PARALLEL at a time, into the work folder: each checked against the hash the hub
 * lists (the sha256 of LFS files, the git blob id of the others). A file an earlier attempt
 * left part-way is resumed; one it finished is hashed again, not fetched again.
 */
export async function fetchFromHub(ctx: TaskContext<InstallParams>, source: HubSource, work: InstallWork): Promise<Fetched> {
  const settings = ctx.config.install;
  const p = ctx.job.params;
  const hub = new HubClient(settings.hubEndpoint, settings.hubToken, {
    signal: ctx.signal,
    timeoutMs: settings.requestTimeoutMs,
    // The endpoint is the operator's choice: a mirror on plain http is theirs to make.
    allowHttp: settings.allowHttp || settings.hubEndpoint.startsWith('http:'),
  });
  ctx.report('DOWNLOADING', { message: `Listing the files of ${describeSource(source)}` });
  const commit = await hub.commitOf(source.repo, p.revision ?? source.revision ?? 'main');
  const listing = await hub.listFiles(source.repo, commit, source.subfolder);
  const chosen = new Set(chooseFiles(listing.map((f) => f.path), p.kind, p.files));
  const files = listing.filter((f) => chosen.has(f.path));
  const total = files.reduce((n, f) => n + f.size, 0);
  const onDisk = await bytesOnDisk(work.files, files);
  await checkRoom({ dir: work.dir, incomingBytes: total - onDisk, modelBytes: total, config: ctx.config, storage: ctx.storage });
  ctx.log.info({ source: describeSource(source), commit, files: files.length, bytes: total, onDisk }, 'downloading a model from the hub');

  const progress = new TransferProgress(files, (r) => ctx.report('DOWNLOADING', r));
  const hashes = new Map<string, string>();
  await inParallel(files, settings.parallelFiles, ctx.signal, async (file, signal) => {
    const final = path.join(work.files, file.path);
    const part = `${final}.part`;
    // Nothing on disk is taken unread: a file an earlier attempt verified is hashed again.
    if ((await fs.stat(final).catch(() => undefined))?.size === file.size) await fs.rename(final, part);
    for (let fresh = false; ; fresh = true) {
      const got = await downloadFile(
        {
          url: hub.fileUrl(source.repo, commit, file.path, source.subfolder),
          part,
          label: `${source.repo}/${file.path}`,
          size: file.size,
          maxBytes: ctx.config.uploads.maxUploadBytes,
          gitOid: file.gitOid,
          refusedHint: hub.refusedHint,
        },
        { ...hub.downloads, signal },
        { sized: (_, have) => progress.started(file.path, file.size, have), bytes: (n) => progress.bytes(file.path, n) },
      );
      const mismatch = file.sha256 ? got.sha256 !== file.sha256 && `its sha256 is ${got.sha256}, the hub lists ${file.sha256}` : got.gitOidMatches === false && 'its git blob id is not the one the hub lists';
      if (!mismatch) {
        hashes.set(file.path, got.sha256);
        break;
      }
      // Bytes resumed from an earlier attempt may be what went wrong: fetched whole once more, it decides.
      if (got.resumedFrom > 0 && !fresh) {
        await fs.rm(part, { force: true });
        continue;
      }
      await fs.rm(part, { force: true });
      throw new JobFailure('CHECKSUM_MISMATCH', `${file.path} did not download intact: ${mismatch}`, false);
    }
    await fs.rename(part, final);
    progress.finished(file.path);
  });
  return { dir: work.files, paths: files.map((f) => f.path), hashes };
}

/** Bytes of these files an earlier attempt left in the folder, whole or in part. */
async function bytesOnDisk(dir: string, files: HubFile[]): Promise<number> {
  let n = 0;
  for (const f of files) {
    const final = path.join(dir, f.path);
    const size = (await fs.stat(final).catch(() => undefined))?.size ?? (await fs.stat(`${final}.part`).catch(() => undefined))?.size ?? 0;
    n += Math.min(size, f.size);
  }
  return n;
}

/**
 * Runs `fn` on each item, `limit` at a time. The first failure stops the others (through the
 * signal they are given) and is thrown once every one has stopped, so nothing still writes when
 * the caller cleans up.
 */
export async function inParallel<T>(items: T[], limit: number, signal: AbortSignal, fn: (item: T, signal: AbortSignal) => Promise<void>): Promise<void> {
  const stop = new AbortController();
  const either = AbortSignal.any([signal, stop.signal]);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const lane = async () => {
    while (next < items.length && !either.aborted) {
      const item = items[next++]!;
      try {
        await fn(item, either);
      } catch (err) {
        failure ??= { err };
        stop.abort(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (signal.aborted) throw signal.reason;
  if (failure) throw failure.err;
}
