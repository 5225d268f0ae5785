import crypto from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { JobModelEntity } from '../../db/entities/job-model.js';
import { JobFailure, KilnError } from '../../errors.js';
import type { TaskContext, TaskResult } from '../../jobs/kind.js';
import { examineModel, type ModelInput, registerModel } from '../../models/intake.js';
import { modelKey } from '../../storage/keys.js';
import { fetchFromHub } from './fetch-hub.js';
import { fetchFromUrl } from './fetch-url.js';
import { asLora } from './fetched.js';
import { INSTALLED } from './kind.js';
import type { InstallParams } from './params.js';
import { describeSource, parseSource } from './source.js';
import { storeFiles } from './store-files.js';
import { InstallWork } from './work-dir.js';

/**
 * One attempt of an install, in the worker: download into the host's work folder (resuming what
 * an earlier attempt left), check with the intake uploads go through, store under a model id of
 * this attempt's own, and record the model in the transaction that completes the job. An attempt
 * that fails removes what it stored; a final failure (not worth a retry) or a cancel also removes
 * the downloads, which a retry would otherwise resume.
 */
export async function run(ctx: TaskContext<InstallParams>): Promise<TaskResult> {
  const p = ctx.job.params;
  const source = parseSource(p.source);
  const work = new InstallWork(ctx.config.install.dir, ctx.job.id);
  // Per attempt, so that a stale attempt's clean-up can never touch what a later one stored.
  const modelId = crypto.randomUUID();
  const prefix = modelKey(modelId);
  let stored = false;
  try {
    let fetched = source.type === 'hub' ? await fetchFromHub(ctx, source, work) : await fetchFromUrl(ctx, source, work);
    if (p.kind === 'LORA') fetched = await asLora(fetched, work.lora);

    ctx.report('VERIFYING', { message: `Checking ${fetched.paths.length} file(s) as uploads are checked` });
    const input: ModelInput = { name: p.name, kind: p.kind, baseModelId: p.baseModelId, triggerWord: p.triggerWord };
    // A LoRA is checked against its base model's graphs, through this worker's model cache.
    const base = p.kind === 'LORA' ? await ctx.model('base') : undefined;
    const examined = await examineModel(fetched.dir, fetched.paths, input, base && { model: base.model, dir: base.dir }, fetched.hashes).catch((err: unknown) => {
      if (err instanceof KilnError) throw new JobFailure('INVALID_MODEL', `${describeSource(source)} is not a model Kiln can run: ${err.message}`, false, { cause: err });
      throw err;
    });

    ctx.signal.throwIfAborted();
    const started = performance.now();
    await work.willStore(modelId);
    stored = true;
    await storeFiles(ctx.storage, fetched.dir, fetched.paths, prefix, ctx.signal, (index, file) =>
      ctx.report('REGISTERING', { message: `Storing ${file} (file ${index} of ${fetched.paths.length})` }),
    ).catch((err: unknown) => {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw new JobFailure('STORAGE_ERROR', `could not store the model's files: ${(err as Error).message}`, true, { cause: err });
    });
    ctx.timing.saveMs = performance.now() - started;
    ctx.log.info({ modelId, files: fetched.paths.length, bytes: examined.files.reduce((n, f) => n + f.sizeBytes, 0) }, 'model files stored; registering it');

    return {
      outputs: [],
      commit: async (em: EntityManager) => {
        try {
          await registerModel(em, modelId, input, examined);
          await em.insert(JobModelEntity, { jobId: ctx.job.id, role: INSTALLED, modelId });
        } catch (err) {
          await ctx.storage.deletePrefix(prefix).catch((e) => ctx.log.warn({ err: e, prefix }, 'could not remove the files of a model that was not registered'));
          if (!(err instanceof KilnError)) throw err;
          await work.remove();
          // The same content already installed: CONFLICT, naming the model that has it.
          throw new JobFailure(err.code, err.message, false, { cause: err });
        }
      },
    };
  } catch (err) {
    const failure = ctx.signal.aborted ? ctx.signal.reason : err;
    if (stored) await ctx.storage.deletePrefix(prefix).catch((e) => ctx.log.warn({ err: e, prefix }, 'could not remove what a failed install stored'));
    if (failure instanceof JobFailure && !failure.retryable) await work.remove().catch((e) => ctx.log.warn({ err: e, dir: work.dir }, 'could not remove the downloads of a failed install'));
    throw failure;
  }
}
