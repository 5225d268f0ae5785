import { z } from 'zod';
import { deleteModel } from '../models/delete-model.js';
import { completeModelUpload, createModelUpload, uploadModelFile } from '../models/uploads.js';
import { notFound } from '../errors.js';
import type { Context } from '../server/context.js';
import { builder } from './builder.js';
import { isUuid } from './ids.js';
import { ModelKind, ModelRef } from './model.js';

const UploadModelInput = builder.inputType('UploadModelInput', {
  fields: (t) => ({
    name: t.string({ required: true, validate: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'), description: '1..200 characters' }),
    kind: t.field({ type: ModelKind, required: true }),
    baseModelId: t.id({ description: 'For a LoRA: the base model it applies to (its pipeline must take LoRAs).' }),
    triggerWord: t.string({ validate: z.string().max(200, 'must be at most 200 characters').nullish() }),
    path: t.string({
      description:
        "For a base model's folder, sent file by file: this file's place in it (e.g. `unet/model.onnx`). Not used for LoRA adapters.",
    }),
    uploadId: t.id({ description: 'Adds this file to an upload opened by an earlier createModelUpload (folders).' }),
  }),
});

interface UploadShape {
  id: string;
  url: string;
  method: string;
  headers: Record<string, string>;
  expiresAt: Date;
  path: string;
}

const ModelUploadRef = builder.objectRef<UploadShape>('ModelUpload').implement({
  description: 'Where to send a file of a model: PUT its bytes to `url` with `headers`, then call completeModelUpload.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The upload, and the id the model will have.' }),
    url: t.exposeString('url'),
    method: t.exposeString('method'),
    headers: t.field({ type: 'JSON', resolve: (u) => u.headers }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
    path: t.exposeString('path', { description: "The file's place in the model's folder." }),
  }),
});

const uploadDeps = (ctx: Context) => ({ ...ctx.services, limits: ctx.services.config.uploads });

builder.mutationFields((t) => ({
  uploadModel: t.field({
    type: ModelRef,
    description:
      'Uploads a LoRA adapter (.safetensors) in the request itself (multipart; at most KILN_MAX_MULTIPART_MB). Larger files and base models go through createModelUpload.',
    args: { file: t.arg({ type: 'Upload', required: true }), input: t.arg({ type: UploadModelInput, required: true }) },
    resolve: (_, { file, input }, ctx) => uploadModelFile(uploadDeps(ctx), input, file),
  }),
  createModelUpload: t.field({
    type: ModelUploadRef,
    description: 'Opens a direct upload of a model file of `sizeBytes` bytes (at most KILN_MAX_UPLOAD_MB) and says where to send it.',
    args: { input: t.arg({ type: UploadModelInput, required: true }), sizeBytes: t.arg.float({ required: true }) },
    resolve: async (_, { input, sizeBytes }, ctx) => {
      const { upload, path, target } = await createModelUpload(uploadDeps(ctx), input, sizeBytes, ctx.baseUrl);
      return { id: upload.id, path, ...target };
    },
  }),
  completeModelUpload: t.field({
    type: ModelRef,
    description: 'Checks what arrived for an upload and creates the model; refused files are removed.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => {
      if (!isUuid(id)) throw notFound('upload', id);
      return completeModelUpload(uploadDeps(ctx), id);
    },
  }),
  deleteModel: t.id({
    description: 'Deletes a model and its files. CONFLICT while pending or running jobs use it, or LoRAs are made for it.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_, { id }, ctx) => {
      if (!isUuid(id)) throw notFound('model', id);
      await deleteModel(ctx.services, id);
      return id;
    },
  }),
}));
