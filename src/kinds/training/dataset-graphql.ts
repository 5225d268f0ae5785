import { z } from 'zod';
import { type Dataset, DatasetEntity, type DatasetImageRow, type DatasetUploadFile } from '../../db/entities/dataset.js';
import { deleteDataset } from '../../datasets/delete-dataset.js';
import { addDatasetUploadFiles, completeDatasetUpload, createDataset, createDatasetUpload, type DatasetUploadTarget } from '../../datasets/dataset-uploads.js';
import { notFound } from '../../errors.js';
import { builder } from '../../schema/builder.js';
import { isUuid } from '../../schema/ids.js';
import { applyKeyset, keysetConnection } from '../../schema/pagination.js';
import type { Context } from '../../server/context.js';
import { datasetKey } from '../../storage/keys.js';

const DatasetStatusEnum = builder.enumType('DatasetStatus', {
  description: 'UPLOADING: files may still be sent; CHECKING: being checked; READY: trainings may use it.',
  values: ['UPLOADING', 'CHECKING', 'READY'] as const,
});

const DatasetImageRef = builder.objectRef<DatasetImageRow & { datasetId: string }>('DatasetImage').implement({
  description: 'One picture of a dataset, as Kiln keeps it (upright, re-encoded as PNG), with its caption.',
  fields: (t) => ({
    file: t.exposeString('file', { description: 'Its canonical name in the dataset folder (`001.png`; the caption is `001.txt`).' }),
    name: t.exposeString('name', { description: 'Its name as sent (a path inside a zip).' }),
    width: t.exposeInt('width'),
    height: t.exposeInt('height'),
    sha256: t.exposeString('sha256', { description: 'Of the stored PNG: the same picture has the same hash.' }),
    caption: t.exposeString('caption', { description: 'As sent (the trigger word is added when training, where it is missing).' }),
    url: t.string({
      description: 'Signed, expiring link to the stored PNG.',
      resolve: (i, _, ctx) => ctx.services.storage.signedUrl(`${datasetKey(i.datasetId)}/${i.file}`, { baseUrl: ctx.baseUrl }),
    }),
  }),
});

const PendingFileRef = builder.objectRef<DatasetUploadFile>('DatasetUploadFile').implement({
  description: 'A file announced for an upload that is not complete yet.',
  fields: (t) => ({ name: t.exposeString('name'), sizeBytes: t.exposeFloat('sizeBytes') }),
});

export const DatasetRef = builder.objectRef<Dataset>('Dataset').implement({
  description: 'Captioned pictures to train LoRA adapters on.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    status: t.field({ type: DatasetStatusEnum, resolve: (d) => d.status }),
    resolution: t.exposeInt('resolution', { nullable: true, description: 'The short side every image was checked to reach, when given at creation.' }),
    imageCount: t.exposeInt('imageCount'),
    sizeBytes: t.exposeFloat('sizeBytes', { description: 'Of its stored files.' }),
    sha256: t.exposeString('sha256', { nullable: true, description: "The trainers' dataset hash (of its sorted sha256 and path list), as adapters record it." }),
    smallestSide: t.int({
      nullable: true,
      description: 'The shortest side of any of its images: the highest resolution it can be trained at.',
      resolve: (d) => (d.images.length ? Math.min(...d.images.map((i) => Math.min(i.width, i.height))) : null),
    }),
    images: t.field({ type: [DatasetImageRef], resolve: (d) => d.images.map((i) => ({ ...i, datasetId: d.id })) }),
    pendingFiles: t.field({ type: [PendingFileRef], description: 'Files announced for its upload, while it is not complete.', resolve: (d) => d.uploadFiles }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    readyAt: t.expose('readyAt', { type: 'DateTime', nullable: true }),
  }),
});

const DatasetInputRef = builder.inputType('DatasetInput', {
  description: 'A dataset to create.',
  fields: (t) => ({
    name: t.string({ required: true, validate: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'), description: '1..200 characters' }),
    resolution: t.int({
      validate: z.number().int().min(8, 'must be between 8 and 2048').max(2048, 'must be between 8 and 2048').nullish(),
      description: 'The training resolution, when known: images smaller than it on their short side are refused now rather than at trainLora.',
    }),
  }),
});

const DatasetFileInputRef = builder.inputType('DatasetFileInput', {
  description: 'A file to be sent by direct upload: an image (.jpg, .jpeg, .png, .webp), its caption (.txt of the same name), or a .zip of them.',
  fields: (t) => ({
    name: t.string({ required: true }),
    sizeBytes: t.float({ required: true }),
  }),
});

const UploadTargetRef = builder.objectRef<DatasetUploadTarget>('DatasetUploadTarget').implement({
  description: "Where to send one file's bytes: PUT them to `url` with `headers`, exactly `sizeBytes` of them.",
  fields: (t) => ({
    name: t.exposeString('name'),
    url: t.exposeString('url'),
    method: t.exposeString('method'),
    headers: t.field({ type: 'JSON', resolve: (u) => u.headers }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
  }),
});

const DatasetUploadRef = builder.objectRef<{ dataset: Dataset; files: DatasetUploadTarget[] }>('DatasetUpload').implement({
  description: 'An open dataset upload: send each file to its target, then call completeDatasetUpload.',
  fields: (t) => ({
    id: t.id({ description: 'The upload, and the id the dataset has.', resolve: (u) => u.dataset.id }),
    dataset: t.field({ type: DatasetRef, resolve: (u) => u.dataset }),
    files: t.field({ type: [UploadTargetRef], description: 'The files just announced, in their order.', resolve: (u) => u.files }),
  }),
});

const deps = (ctx: Context) => ({ ...ctx.services, limits: ctx.services.config.datasets, urlTtlSeconds: ctx.services.config.uploads.urlTtlSeconds });
const uuid = (what: string, id: string) => {
  if (!isUuid(id)) throw notFound(what, id);
  return id;
};

builder.mutationFields((t) => ({
  createDataset: t.field({
    type: DatasetRef,
    description:
      'Creates a dataset from files sent in the request (multipart; at most KILN_MAX_MULTIPART_MB): images (.jpg, .jpeg, .png, .webp) with their captions (.txt of the same name), zips of them, or both. Everything is checked before anything is kept.',
    args: { input: t.arg({ type: DatasetInputRef, required: true }), files: t.arg({ type: ['Upload'], required: true }) },
    resolve: (_, { input, files }, ctx) => createDataset(deps(ctx), input, files),
  }),
  createDatasetUpload: t.field({
    type: DatasetUploadRef,
    description: 'Opens a dataset upload whose files are sent by direct upload (large files and datasets), and says where to send each.',
    args: { input: t.arg({ type: DatasetInputRef, required: true }), files: t.arg({ type: [DatasetFileInputRef], required: true }) },
    resolve: (_, { input, files }, ctx) => createDatasetUpload(deps(ctx), input, files, ctx.baseUrl),
  }),
  addDatasetUploadFiles: t.field({
    type: DatasetUploadRef,
    description: 'Announces more files for an open dataset upload.',
    args: { id: t.arg.id({ required: true }), files: t.arg({ type: [DatasetFileInputRef], required: true }) },
    resolve: (_, { id, files }, ctx) => addDatasetUploadFiles(deps(ctx), uuid('dataset upload', id), files, ctx.baseUrl),
  }),
  completeDatasetUpload: t.field({
    type: DatasetRef,
    description: 'Checks what arrived for a dataset upload and makes the dataset ready; a refusal removes the upload and its files.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => completeDatasetUpload(deps(ctx), uuid('dataset upload', id)),
  }),
  deleteDataset: t.id({
    description: 'Deletes a dataset (or an upload not completed) and its files at once. CONFLICT while pending or running trainings use it.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_, { id }, ctx) => {
      await deleteDataset(ctx.services, uuid('dataset', id));
      return id;
    },
  }),
}));

builder.queryFields((t) => ({
  dataset: t.field({
    type: DatasetRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_, { id }, ctx) => (isUuid(id) ? await ctx.services.ds.manager.findOneBy(DatasetEntity, { id }) : null),
  }),
  datasets: t.connection(
    {
      type: DatasetRef,
      description: 'Datasets, newest first; of one status.',
      args: { status: t.arg({ type: DatasetStatusEnum, required: false }) },
      resolve: (_, args, ctx) =>
        keysetConnection(args, (page) => {
          const qb = ctx.services.ds.manager.createQueryBuilder(DatasetEntity, 'd').where('true');
          if (args.status) qb.andWhere('d.status = :status', { status: args.status });
          return applyKeyset(qb, page).getMany();
        }),
    },
    { name: 'DatasetConnection' },
    { name: 'DatasetEdge' },
  ),
}));
