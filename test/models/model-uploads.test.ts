import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { Client } from 'graphql-ws';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBuiltinLora } from '../../src/models/builtin-lora.js';
import { DataType, GraphBuilder } from '../../src/pipelines/onnx/graph-builder.js';
import { collect, modelIdNamed, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { loraFile } from '../support/lora-files.js';
import { GENERATE, GENERATION, PROGRESS } from '../support/operations.js';
import { startS3Server, type TestS3Server } from '../support/s3.js';
import { buildSdFixture } from '../support/sd-fixtures.js';
import { uploadDirect, uploadMultipart } from '../support/uploads.js';

const sha = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');
const bytesOf = (f: { bytes: Uint8Array | string }) => (typeof f.bytes === 'string' ? new TextEncoder().encode(f.bytes) : f.bytes);

interface Setup {
  k: TestKiln;
  /** Every object key under models/ in the store. */
  modelObjects(): Promise<string[]>;
  stop(): Promise<void>;
}

const limits = { KILN_MAX_MULTIPART_MB: '1', KILN_MAX_UPLOAD_MB: '8' };

async function localSetup(): Promise<Setup> {
  const k = await startTestKiln(limits);
  return {
    k,
    modelObjects: async () =>
      (await fs.readdir(path.join(k.dataDir, 'storage', 'models'), { recursive: true, withFileTypes: true }).catch(() => []))
        .filter((e) => e.isFile())
        .map((e) => path.relative(path.join(k.dataDir, 'storage'), path.join(e.parentPath, e.name))),
    stop: () => k.stop(),
  };
}

async function s3Setup(): Promise<Setup> {
  const s3: TestS3Server = await startS3Server();
  // The S3 driver takes credentials the usual way, from the AWS environment.
  process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
  const k = await startTestKiln({
    ...limits,
    KILN_S3_BUCKET: s3.bucket,
    KILN_S3_ENDPOINT: s3.endpoint,
    KILN_S3_REGION: s3.region,
    KILN_S3_FORCE_PATH_STYLE: 'true',
  });
  const client = new S3Client({ region: s3.region, endpoint: s3.endpoint, forcePathStyle: true, credentials: s3.credentials });
  return {
    k,
    async modelObjects() {
      const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'models/' }));
      return (page.Contents ?? []).map((o) => o.Key!);
    },
    async stop() {
      client.destroy();
      await k.stop();
      await s3.stop();
    },
  };
}

describe.each([
  ['local disk', localSetup],
  ['S3 (s3rver)', s3Setup],
])('models through the API, stored on %s', (_, setup) => {
  let s: Setup;
  let client: Client;
  let builtinId: string;
  beforeAll(async () => {
    s = await setup();
    client = wsClient(s.k.url);
    builtinId = await modelIdNamed(s.k.gql);
  });
  afterAll(async () => {
    await client?.dispose();
    await s?.stop();
  });

  const countModels = async () => (await s.k.kiln.ds.query(`SELECT count(*)::int AS n FROM models WHERE NOT builtin`))[0].n as number;
  async function expectNothingLeft(res: { errors?: { extensions?: Record<string, unknown> }[] }, code: string, before: { rows: number; objects: string[] }) {
    expect(res.errors?.[0]?.extensions?.code).toBe(code);
    expect(await countModels()).toBe(before.rows);
    expect(await s.modelObjects()).toEqual(before.objects);
  }
  const snapshot = async () => ({ rows: await countModels(), objects: await s.modelObjects() });
  const run = async (input: Record<string, unknown>) => {
    const { generate } = await ok(s.k.gql(GENERATE, { input }));
    await collect(client, PROGRESS, { id: generate.id });
    return (await ok(s.k.gql(GENERATION + '', { id: generate.id }))).generation;
  };

  it('takes a LoRA as a multipart upload, under a name of its own choosing, and serves it back', async () => {
    const lora = makeBuiltinLora({ seed: 1 });
    const res = await uploadMultipart(s.k.url, lora, '../../../etc/passwd.safetensors', { name: 'glow', kind: 'LORA', baseModelId: builtinId, triggerWord: 'glowing' });
    expect(res.errors).toBeUndefined();
    const model = res.data.uploadModel;
    expect(model).toMatchObject({ name: 'glow', kind: 'LORA', pipeline: 'builtin', baseModel: { id: builtinId }, sizeBytes: lora.length, sha256: sha(lora) });
    expect(model.files.map((f: { path: string }) => f.path)).toEqual(['adapter.safetensors']);
    expect((await s.modelObjects()).filter((k) => k.includes(model.id))).toEqual([`models/${model.id}/adapter.safetensors`]);
    const download = await fetch(model.downloadUrl);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-disposition')).toMatch(/^attachment/);
    expect(sha(new Uint8Array(await download.arrayBuffer()))).toBe(sha(lora));
  });

  it('stores the same bytes once: a second upload of them is a CONFLICT naming the first', async () => {
    const lora = makeBuiltinLora({ seed: 1 });
    const before = await snapshot();
    const res = await uploadDirect(s.k.gql, [{ path: 'adapter.safetensors', bytes: lora }], { name: 'again', kind: 'LORA', baseModelId: builtinId });
    await expectNothingLeft(res, 'CONFLICT', before);
    expect(res.errors![0]!.extensions!.modelId).toBeDefined();
  });

  it('takes a base model folder as a direct upload, file by file, and generates with it', async () => {
    const files = buildSdFixture({ layout: 'optimum' }).map((f) => ({ path: f.path, bytes: bytesOf(f) }));
    const res = await uploadDirect(s.k.gql, files, { name: 'tiny sd', kind: 'BASE' });
    expect(res.errors).toBeUndefined();
    const model = res.data.completeModelUpload;
    expect(model).toMatchObject({ kind: 'BASE', pipeline: 'stable-diffusion-onnx' });
    expect(model.files.map((f: { path: string }) => f.path).sort()).toEqual(files.map((f) => f.path).sort());
    const generation = await run({ prompt: 'a red fox', modelId: model.id, steps: 3, width: 64, height: 64, seed: 4 });
    expect(generation).toMatchObject({ status: 'COMPLETED', images: [{ width: 64, height: 64 }] });
  });

  it('changes the image with a LoRA, and gives the base image back byte for byte without it', async () => {
    const upload = await uploadMultipart(s.k.url, makeBuiltinLora({ seed: 7 }), 'x.safetensors', { name: 'seven', kind: 'LORA', baseModelId: builtinId });
    const loraId = upload.data.uploadModel.id;
    const input = { prompt: 'a kiln', steps: 4, width: 128, height: 128, seed: 3 };
    const base = await run(input);
    const withLora = await run({ ...input, loraId, loraWeight: 1 });
    expect(withLora.status).toBe('COMPLETED');
    expect(withLora.images[0].sha256).not.toBe(base.images[0].sha256);
    expect(withLora.timing.loraLoadMs).toBeGreaterThan(0);
    const again = await run({ ...input, loraId, loraWeight: 1 });
    expect(again.images[0].sha256).toBe(withLora.images[0].sha256); // its session was kept: nothing reloaded
    expect(again.timing.loraLoadMs).toBeLessThan(withLora.timing.loraLoadMs);
    expect((await run(input)).images[0].sha256).toBe(base.images[0].sha256);
    // At weight 0 the pixels are the base's (the PNG's text still names the LoRA).
    const pixels = async (g: { images: { url: string }[] }) => sha(await sharp(Buffer.from(await (await fetch(g.images[0]!.url)).arrayBuffer())).raw().toBuffer());
    expect(await pixels(await run({ ...input, loraId, loraWeight: 0 }))).toBe(await pixels(base));
  });

  it('refuses bad files and leaves no row and no file behind', async () => {
    const before = await snapshot();
    // Larger than KILN_MAX_MULTIPART_MB (1 MiB).
    const big = await uploadMultipart(s.k.url, new Uint8Array(1.5 * 1024 * 1024), 'big.safetensors', { name: 'big', kind: 'LORA', baseModelId: builtinId });
    await expectNothingLeft(big, 'PAYLOAD_TOO_LARGE', before);
    // Larger than KILN_MAX_UPLOAD_MB (8 MiB), refused before anything is sent.
    await expectNothingLeft(
      await s.k.gql(`mutation($i: UploadModelInput!) { createModelUpload(input: $i, sizeBytes: 9e6) { id } }`, { i: { name: 'x', kind: 'LORA', baseModelId: builtinId } }),
      'PAYLOAD_TOO_LARGE',
      before,
    );
    // A safetensors file whose header says more than the file holds.
    const badHeader = new Uint8Array(64);
    new DataView(badHeader.buffer).setBigUint64(0, 1000n, true);
    await expectNothingLeft(await uploadMultipart(s.k.url, badHeader, 'bad.safetensors', { name: 'bad', kind: 'LORA', baseModelId: builtinId }), 'BAD_USER_INPUT', before);
    // A folder whose UNet reads its weights from outside the folder.
    const escaping = buildSdFixture({ layout: 'optimum' }).map((f) => ({ path: f.path, bytes: bytesOf(f) }));
    const g = new GraphBuilder('escape');
    g.input('x', DataType.FLOAT, [1]);
    g.op('Add', ['x', g.externalWeight('w', [1], '../../secret.bin')], {}, 'y');
    g.output('y', DataType.FLOAT, [1]);
    escaping.find((f) => f.path === 'unet/model.onnx')!.bytes = g.toBytes();
    await expectNothingLeft(await uploadDirect(s.k.gql, escaping, { name: 'escaping', kind: 'BASE' }), 'BAD_USER_INPUT', before);
    // A file path that would climb out of the model's folder.
    const climbing = await s.k.gql(`mutation($i: UploadModelInput!) { createModelUpload(input: $i, sizeBytes: 10) { id } }`, {
      i: { name: 'x', kind: 'BASE', path: '../../x.onnx' },
    });
    expect(climbing.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.path' });
    // A base model is a folder: not a single multipart file.
    const single = await uploadMultipart(s.k.url, new Uint8Array(10), 'model.onnx', { name: 'one', kind: 'BASE' });
    expect(single.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.kind' });
    expect(await snapshot()).toEqual(before);
  });

  it('keeps an upload open until every file has arrived whole', async () => {
    const lora = makeBuiltinLora({ seed: 9 });
    const created = await ok(
      s.k.gql(`mutation($i: UploadModelInput!, $n: Float!) { createModelUpload(input: $i, sizeBytes: $n) { id url method headers } }`, {
        i: { name: 'nine', kind: 'LORA', baseModelId: builtinId },
        n: lora.length,
      }),
    );
    const target = created.createModelUpload;
    const complete = () => s.k.gql(`mutation($id: ID!) { completeModelUpload(id: $id) { id } }`, { id: target.id });
    expect((await complete()).errors![0]!.message).toMatch(/not fully arrived/);
    // One byte short (the signed size refuses it; s3rver, which checks no signatures, keeps it).
    await fetch(target.url, { method: 'PUT', headers: { ...target.headers, 'content-length': String(lora.length - 1) }, body: Buffer.from(lora.subarray(1)) });
    expect((await complete()).errors![0]!.message).toMatch(/not fully arrived/);
    expect((await fetch(target.url, { method: 'PUT', headers: target.headers, body: Buffer.from(lora) })).ok).toBe(true);
    expect((await ok(complete())).completeModelUpload.id).toBe(target.id);
    expect((await complete()).errors![0]!.extensions!.code).toBe('CONFLICT');
  });

  it('deletes a model and its files, but not the built-in one, one in use, or one with LoRAs', async () => {
    expect((await s.k.gql(`mutation($id: ID!) { deleteModel(id: $id) }`, { id: builtinId })).errors![0]!.extensions!.code).toBe('CONFLICT');
    const upload = await uploadMultipart(s.k.url, makeBuiltinLora({ seed: 11 }), 'x.safetensors', { name: 'eleven', kind: 'LORA', baseModelId: builtinId });
    const id = upload.data.uploadModel.id;
    const del = () => s.k.gql(`mutation($id: ID!) { deleteModel(id: $id) }`, { id });

    // In use by a queued or running generation: refused, naming it.
    const { generate } = await ok(s.k.gql(GENERATE, { input: { prompt: 'busy', loraId: id, width: 1024, height: 1024, steps: 150 } }));
    const busy = await del();
    expect(busy.errors![0]!.extensions!.code).toBe('CONFLICT');
    expect(busy.errors![0]!.message).toContain(generate.id);
    await ok(s.k.gql(`mutation($id: ID!) { cancelGeneration(id: $id) { id } }`, { id: generate.id }));
    await collect(client, PROGRESS, { id: generate.id });

    // A base model with LoRAs made for it: refused, naming them.
    const sd = (await ok(s.k.gql(`{ models(kind: BASE) { edges { node { id name } } } }`))).models.edges.find((e: { node: { name: string } }) => e.node.name === 'tiny sd').node.id;
    // An adapter made for another model is refused at upload, saying why.
    const before = await snapshot();
    const stranger = await uploadMultipart(s.k.url, makeBuiltinLora({ seed: 12 }), 'x.safetensors', { name: 'not for tiny sd', kind: 'LORA', baseModelId: sd });
    await expectNothingLeft(stranger, 'BAD_USER_INPUT', before);
    expect(stranger.errors![0]!.message).toMatch(/^None of the LoRA's 5 modules matches a weight of this model; 5 matched nothing, for example "denoiser.cond.lora_A.weight"/);
    const fitting = loraFile('kohya', { lora_unet_conv: { out: 4, in: [4, 3, 3], rank: 2 } });
    const sdLora = await uploadMultipart(s.k.url, fitting, 'x.safetensors', { name: 'for tiny sd', kind: 'LORA', baseModelId: sd });
    expect(sdLora.errors).toBeUndefined();
    const withLoras = await s.k.gql(`mutation($id: ID!) { deleteModel(id: $id) }`, { id: sd });
    expect(withLoras.errors![0]!.extensions!.code).toBe('CONFLICT');
    expect(withLoras.errors![0]!.message).toContain('for tiny sd');
    await ok(s.k.gql(`mutation($id: ID!) { deleteModel(id: $id) }`, { id: sdLora.data.uploadModel.id }));

    expect((await ok(del())).deleteModel).toBe(id);
    expect((await s.modelObjects()).some((k) => k.includes(id))).toBe(false);
    expect((await ok(s.k.gql(`query($id: ID!) { model(id: $id) { id } }`, { id }))).model).toBeNull();
    const reuse = await s.k.gql(GENERATE, { input: { prompt: 'x', loraId: id } });
    expect(reuse.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.loraId' });
    // The same bytes may come back once their model is gone.
    const back = await uploadMultipart(s.k.url, makeBuiltinLora({ seed: 11 }), 'x.safetensors', { name: 'eleven again', kind: 'LORA', baseModelId: builtinId });
    expect(back.errors).toBeUndefined();
  });
});
