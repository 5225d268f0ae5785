import fs from 'node:fs/promises';
import path from 'node:path';
import type { KindHost } from '../../jobs/kind.js';
import { modelKey } from '../../storage/keys.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * An install's folder on the worker's host (`KILN_INSTALL_DIR/<job id>`), kept across its
 * attempts so that a retry on this host resumes the downloads:
 *
 *   files/<path>       a hub repository's files (`<path>.part` until verified)
 *   download/source    a URL's file (`source.part` while it arrives)
 *   unpacked/          the archive it was, unpacked
 *   lora/              the LoRA file under the name models keep it under
 *   stored/<model id>  written before an attempt stores files under models/<model id>/, so
 *                      that what an attempt stored and never registered can be found and removed
 */
export class InstallWork {
  readonly dir: string;

  constructor(root: string, jobId: string) {
    this.dir = path.join(root, jobId);
  }

  get files() {
    return path.join(this.dir, 'files');
  }

  get download() {
    return path.join(this.dir, 'download', 'source');
  }

  get unpacked() {
    return path.join(this.dir, 'unpacked');
  }

  get lora() {
    return path.join(this.dir, 'lora');
  }

  async willStore(modelId: string): Promise<void> {
    await fs.mkdir(path.join(this.dir, 'stored'), { recursive: true });
    await fs.writeFile(path.join(this.dir, 'stored', modelId), '');
  }

  remove(): Promise<void> {
    return fs.rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Removes the work folders of installs that ended (or were deleted): each job's partial downloads,
 * and the files its attempts stored for a model that was never registered (a worker killed
 * between storing and committing). Jobs still pending or running keep theirs, for a retry.
 */
export async function sweepInstalls(host: KindHost): Promise<void> {
  const root = host.config.install.dir;
  const ids = (await fs.readdir(root).catch(() => [] as string[])).filter((n) => UUID.test(n));
  if (!ids.length) return;
  const live: { id: string }[] = await host.ds.query(`SELECT id FROM jobs WHERE id = ANY($1) AND status IN ('PENDING', 'RUNNING')`, [ids]);
  for (const jobId of ids.filter((id) => !live.some((j) => j.id === id))) {
    const work = new InstallWork(root, jobId);
    const stored = (await fs.readdir(path.join(work.dir, 'stored')).catch(() => [] as string[])).filter((n) => UUID.test(n));
    const registered: { id: string }[] = stored.length ? await host.ds.query('SELECT id FROM models WHERE id = ANY($1)', [stored]) : [];
    for (const modelId of stored.filter((id) => !registered.some((m) => m.id === id))) await host.storage.deletePrefix(modelKey(modelId));
    await work.remove();
    host.log.info({ jobId, orphans: stored.length - registered.length }, 'removed the work folder of an install that ended');
  }
}
