import { type Job, JobEntity } from '../../db/entities/job.js';
import { JobModelEntity } from '../../db/entities/job-model.js';
import { inputSchemaOf } from '../../jobs/input-schema.js';
import { builder } from '../../schema/builder.js';
import { isUuid } from '../../schema/ids.js';
import { JobRef, jobTypeFor } from '../../schema/job.js';
import { GenerationStatusEnum } from '../../schema/job-event.js';
import { ModelKind, ModelRef } from '../../schema/model.js';
import { applyKeyset, keysetConnection } from '../../schema/pagination.js';
import { inputTypeFromZod } from '../../schema/params-input.js';
import { IDEMPOTENCY_KEY, submit } from '../../schema/submission.js';
import { INSTALLED, installKind } from './kind.js';
import type { InstallParams } from './params.js';

type Install = Job & { params: InstallParams };
const param = <K extends keyof InstallParams>(key: K) => (j: Install) => j.params[key];

const InstallModelInputRef = inputTypeFromZod(
  'InstallModelInput',
  inputSchemaOf(installKind),
  { ModelKind },
  'A model to install from a Hugging Face hub repository or a URL; only source is required.',
);

interface Transfer {
  bytesDone: number;
  bytesTotal: number;
  bytesPerSecond: number;
  file: string;
  filesDone: number;
  fileCount: number;
}

const TransferRef = builder.objectRef<Transfer>('InstallTransfer').implement({
  description: "Where an install's download stands, as of its last DOWNLOADING event.",
  fields: (t) => ({
    bytesDone: t.exposeFloat('bytesDone', { description: 'Bytes on disk, those an earlier attempt fetched included.' }),
    bytesTotal: t.exposeFloat('bytesTotal'),
    bytesPerSecond: t.exposeFloat('bytesPerSecond', { description: 'Over the last 10 seconds.' }),
    file: t.exposeString('file', { description: 'The file last written to.' }),
    filesDone: t.exposeInt('filesDone'),
    fileCount: t.exposeInt('fileCount'),
  }),
});

/** A model install: a job of kind `install`. */
const ModelInstallRef = builder.objectRef<Install>('ModelInstall').implement({
  description: 'A model being installed from a hub repository or a URL (a job of kind "install").',
  interfaces: [JobRef],
  fields: (t) => ({
    source: t.string({ resolve: param('source') }),
    name: t.string({ description: 'The name the model gets.', resolve: param('name') }),
    modelKind: t.field({ type: ModelKind, resolve: param('kind') }),
    baseModel: t.field({ type: ModelRef, nullable: true, resolve: (j, _, ctx) => (j.params.baseModelId ? ctx.loaders.model.load(j.params.baseModelId) : null) }),
    triggerWord: t.string({ nullable: true, resolve: param('triggerWord') }),
    revision: t.string({ nullable: true, resolve: param('revision') }),
    files: t.stringList({ nullable: true, description: 'The file patterns asked for (null: the layout\'s default).', resolve: param('files') }),
    transfer: t.field({
      type: TransferRef,
      nullable: true,
      resolve: async (j, _, ctx) => {
        const [row] = await ctx.services.ds.query(
          `SELECT detail FROM job_events WHERE job_id = $1 AND step = 'DOWNLOADING' AND detail IS NOT NULL ORDER BY seq DESC LIMIT 1`,
          [j.id],
        );
        return (row?.detail as Transfer | undefined) ?? null;
      },
    }),
    model: t.field({
      type: ModelRef,
      nullable: true,
      description: 'The model it installed, once it completed.',
      resolve: async (j, _, ctx) => {
        const link = await ctx.services.ds.manager.findOneBy(JobModelEntity, { jobId: j.id, role: INSTALLED });
        return link ? ((await ctx.loaders.model.load(link.modelId)) ?? null) : null;
      },
    }),
  }),
});
jobTypeFor(installKind.name, 'ModelInstall');

const loadInstall = async (id: string, load: (id: string) => Promise<Job | undefined>) => {
  const job = isUuid(id) ? await load(id) : undefined;
  return job?.kind === installKind.name ? (job as Install) : undefined;
};

builder.mutationFields((t) => ({
  installModel: t.field({
    type: ModelInstallRef,
    description:
      'Queues an install: a worker downloads the files (DOWNLOADING with bytes and rate), checks them as uploads are checked (VERIFYING), stores and registers the model (REGISTERING). Watch it with generationProgress; stop it with cancelJob.',
    args: { input: t.arg({ type: InstallModelInputRef, required: true }), idempotencyKey: t.arg.string({ required: false, description: IDEMPOTENCY_KEY }) },
    resolve: async (_, { input, idempotencyKey }, ctx) => {
      const { jobs } = await submit(ctx, installKind, 'installModel', [{ input, field: 'input' }], idempotencyKey);
      return jobs[0] as Install;
    },
  }),
}));

builder.queryFields((t) => ({
  modelInstall: t.field({
    type: ModelInstallRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => loadInstall(id, (i) => ctx.loaders.job.load(i)),
  }),
  modelInstalls: t.connection(
    {
      type: ModelInstallRef,
      description: 'Model installs, newest first; of one status.',
      args: { status: t.arg({ type: GenerationStatusEnum, required: false }) },
      resolve: (_, args, ctx) =>
        keysetConnection(args, (page) => {
          const qb = ctx.services.ds.manager.createQueryBuilder(JobEntity, 'j').where('j.kind = :kind', { kind: installKind.name });
          if (args.status) qb.andWhere('j.status = :status', { status: args.status });
          return applyKeyset(qb, page).getMany() as Promise<Install[]>;
        }),
    },
    { name: 'ModelInstallConnection' },
    { name: 'ModelInstallEdge' },
  ),
}));
