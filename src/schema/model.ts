import { type Model, ModelEntity, type ModelFile } from '../db/entities/model.js';
import { pipelineNamed } from '../pipelines/catalog.js';
import { builder } from './builder.js';
import { CapabilitiesRef } from './capabilities.js';
import { isUuid } from './ids.js';
import { applyKeyset, keysetConnection } from './pagination.js';

export const ModelKind = builder.enumType('ModelKind', { values: ['BASE', 'LORA'] as const });

const ModelFileRef = builder.objectRef<ModelFile & { storageKey: string }>('ModelFile').implement({
  description: "One file of a model's folder.",
  fields: (t) => ({
    path: t.exposeString('path'),
    sizeBytes: t.exposeFloat('sizeBytes'),
    sha256: t.exposeString('sha256'),
    downloadUrl: t.string({
      description: 'Signed, expiring link to the file, served as an attachment.',
      resolve: (f, _, ctx) =>
        ctx.services.storage.signedUrl(`${f.storageKey}/${f.path}`, { baseUrl: ctx.baseUrl, downloadAs: f.path.split('/').pop()! }),
    }),
  }),
});

export const ModelRef = builder.objectRef<Model>('Model');
ModelRef.implement({
  description: 'A base model or a LoRA adapter that applies to one.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    kind: t.field({ type: ModelKind, resolve: (m) => m.kind }),
    pipeline: t.exposeString('pipeline', { description: 'e.g. "builtin", "stable-diffusion-onnx"' }),
    modality: t.exposeString('modality', { description: 'What its pipeline makes: "image" or "audio"; each modality has its own default model.' }),
    capabilities: t.field({
      type: CapabilitiesRef,
      nullable: true,
      description: 'What a base model accepts (null for a LoRA adapter: its base model says).',
      resolve: (m) => (m.kind === 'BASE' ? pipelineNamed(m.pipeline).capabilities(m.defaults) : null),
    }),
    baseModel: t.field({
      type: ModelRef,
      nullable: true,
      description: 'For a LoRA: the base model it applies to.',
      resolve: (m, _, ctx) => (m.baseModelId ? ctx.loaders.model.load(m.baseModelId) : null),
    }),
    triggerWord: t.exposeString('triggerWord', { nullable: true }),
    sizeBytes: t.exposeFloat('sizeBytes', { nullable: true }),
    sha256: t.exposeString('sha256', { nullable: true }),
    isDefault: t.exposeBoolean('isDefault', { description: 'The default model of its modality: used when an input omits modelId (GenerateInput for images, GenerateAudioInput for music).' }),
    builtin: t.exposeBoolean('builtin', { description: 'Shipped with Kiln; cannot be deleted.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    files: t.field({
      type: [ModelFileRef],
      description: 'Its files (none once it was deleted).',
      resolve: (m) => (m.deletedAt ? [] : m.files.map((f) => ({ ...f, storageKey: m.storageKey }))),
    }),
    deleted: t.boolean({ description: 'Deleted: its files are gone; past jobs still name it.', resolve: (m) => m.deletedAt !== null }),
    downloadUrl: t.string({
      nullable: true,
      description: 'Signed, expiring link to the model when it is a single file (folders: see files).',
      resolve: (m, _, ctx) =>
        m.files.length === 1 && !m.deletedAt
          ? ctx.services.storage.signedUrl(`${m.storageKey}/${m.files[0]!.path}`, { baseUrl: ctx.baseUrl, downloadAs: m.files[0]!.path })
          : null,
    }),
  }),
});

builder.queryFields((t) => ({
  models: t.connection(
    {
    type: ModelRef,
    args: { kind: t.arg({ type: ModelKind, required: false }) },
    resolve: (_, args, ctx) =>
      keysetConnection(args, (page) => {
        const qb = ctx.services.ds.manager.createQueryBuilder(ModelEntity, 'm').where('m.deletedAt IS NULL');
        if (args.kind) qb.andWhere('m.kind = :kind', { kind: args.kind });
        return applyKeyset(qb, page).getMany();
      }),
    },
    { name: 'ModelConnection' },
    { name: 'ModelEdge' },
  ),
  model: t.field({
    type: ModelRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    description: 'A model, unless it does not exist or was deleted.',
    resolve: async (_, { id }, ctx) => {
      const model = isUuid(id) ? await ctx.loaders.model.load(id) : undefined;
      return model && !model.deletedAt ? model : null;
    },
  }),
}));
