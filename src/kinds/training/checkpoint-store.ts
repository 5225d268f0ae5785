import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { Logger } from '../../log.js';
import { trainingCheckpointsKey } from '../../storage/keys.js';
import type { Storage } from '../../storage/storage.js';
import type { TrainingCheckpoint } from '../../trainers/trainer.js';

/** What `latest-<lease>.json` says: the newest checkpoint that lease stored whole. */
const pointerSchema = z.object({
  step: z.number().int().min(1),
  folder: z.string().regex(/^\d+-\d+$/),
  /** Each file's path in the work folder; it is stored as `<folder>/<index>`. */
  files: z.array(z.object({ path: z.string().min(1), sizeBytes: z.number().int().min(0) })),
});
type Pointer = z.infer<typeof pointerSchema>;

/**
 * A training's checkpoints in shared storage, so that a retry on any worker continues from the
 * last one: each checkpoint the trainer reports (a file, or a folder such as sd-scripts' state)
 * is copied under `jobs/<id>/checkpoints/<lease>-<step>/`, then `latest-<lease>.json` names it
 * and the lease's previous one is removed. Every attempt writes under its own lease, so a worker
 * that lost its job (paused, cut off) cannot spoil the next one's; a new attempt takes the newest
 * pointer of the leases before its own. Uploads run beside the training, one at a time; when
 * the trainer writes checkpoints faster than they upload, only the newest waiting one goes.
 */
export class CheckpointStore {
  private readonly prefix: string;
  private stored: Pointer | undefined;
  private waiting: TrainingCheckpoint | undefined;
  private uploading: Promise<void> | undefined;

  constructor(
    private readonly storage: Storage,
    jobId: string,
    private readonly lease: number,
    private readonly workDir: string,
    private readonly log: Logger,
    /** Told of each checkpoint once it is stored. */
    private readonly onStored: (step: number) => void,
  ) {
    this.prefix = trainingCheckpointsKey(jobId);
  }

  /** Copies the newest checkpoint an earlier attempt stored into the work folder; its step, or 0 when there is none. */
  async restore(): Promise<number> {
    for (let lease = this.lease - 1; lease >= 1; lease--) {
      const key = `${this.prefix}/latest-${lease}.json`;
      if (!(await this.storage.stat(key))) continue;
      const text = (await readAll(await this.storage.read(key))).toString('utf8');
      const parsed = pointerSchema.safeParse(parseJson(text));
      // Not one of ours: the lease before it may have one.
      if (!parsed.success) continue;
      for (const [i, f] of parsed.data.files.entries()) {
        const target = path.resolve(this.workDir, f.path);
        if (!target.startsWith(this.workDir + path.sep)) throw new Error(`checkpoint file ${f.path} is outside the work folder`);
        await fs.mkdir(path.dirname(target), { recursive: true });
        await pipeline(await this.storage.read(`${this.prefix}/${parsed.data.folder}/${i}`), createWriteStream(target));
      }
      return parsed.data.step;
    }
    return 0;
  }

  /** Takes a checkpoint the trainer reported; it is stored in the background. */
  offer(checkpoint: TrainingCheckpoint): void {
    this.waiting = checkpoint;
    this.uploading ??= this.drain().finally(() => (this.uploading = undefined));
  }

  /** Resolves once every checkpoint offered so far is stored (or given up on). */
  async settled(): Promise<void> {
    while (this.uploading) await this.uploading;
  }

  private async drain() {
    while (this.waiting) {
      const next = this.waiting;
      this.waiting = undefined;
      try {
        await this.upload(next);
        this.onStored(next.step);
      } catch (err) {
        // The training goes on; a retry would continue from the checkpoint before.
        this.log.warn({ err, step: next.step }, 'could not store a checkpoint');
      }
    }
  }

  private async upload(c: TrainingCheckpoint) {
    const folder = `${this.lease}-${c.step}`;
    const files = await filesUnder(c.path);
    const listed: Pointer['files'] = [];
    for (const [i, file] of files.entries()) {
      const { size } = await fs.stat(file);
      await this.storage.put(`${this.prefix}/${folder}/${i}`, createReadStream(file));
      listed.push({ path: path.relative(this.workDir, file), sizeBytes: size });
    }
    const pointer: Pointer = { step: c.step, folder, files: listed };
    await this.storage.put(`${this.prefix}/latest-${this.lease}.json`, Buffer.from(JSON.stringify(pointer)), 'application/json');
    const previous = this.stored;
    this.stored = pointer;
    if (previous) await this.storage.deletePrefix(`${this.prefix}/${previous.folder}`);
  }
}

/** A file, or every file inside a folder, as absolute paths in a stable order. */
async function filesUnder(p: string): Promise<string[]> {
  const stat = await fs.stat(p);
  if (!stat.isDirectory()) return [p];
  const entries = await fs.readdir(p, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
