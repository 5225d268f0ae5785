import fs from 'node:fs/promises';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import type { Logger } from '../../log.js';
import { killOrphan } from '../../trainers/external/tool-process.js';

/**
 * A training attempt's folder on the worker: `<KILN_TRAINING_DIR>/<job id>.<lease>/`, holding
 * the dataset's copy (`dataset/`) and the trainer's work folder (`work/`). It is the attempt's
 * alone, and goes when the attempt ends: what must outlive it (checkpoints) is in storage.
 */
export const attemptFolder = (root: string, jobId: string, lease: number) => path.join(root, `${jobId}.${lease}`);

const NAME = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(\d+)$/;

/** Removes a folder an attempt leaves, after stopping what a trainer left running from it. */
export async function removeAttemptFolder(folder: string): Promise<void> {
  await killOrphan(path.join(folder, 'work'));
  await fs.rm(folder, { recursive: true, force: true });
}

/**
 * Folders of attempts whose worker died before removing them (it was killed): any whose job is
 * not RUNNING at that lease any more, whichever process on this host ran it. A trainer still
 * running from one is stopped first.
 */
export async function removeStaleAttemptFolders(ds: DataSource, root: string, log: Logger): Promise<void> {
  const names = (await fs.readdir(root).catch(() => [] as string[])).filter((n) => NAME.test(n));
  if (!names.length) return;
  const ids = [...new Set(names.map((n) => NAME.exec(n)![1]!))];
  const running: { id: string; lease: number }[] = await ds.query(`SELECT id, lease FROM jobs WHERE id = ANY($1) AND status = 'RUNNING'`, [ids]);
  const live = new Set(running.map((r) => `${r.id}.${r.lease}`));
  for (const name of names.filter((n) => !live.has(n))) {
    await removeAttemptFolder(path.join(root, name));
    log.info({ folder: name }, 'removed the folder of a training attempt whose worker stopped');
  }
}
