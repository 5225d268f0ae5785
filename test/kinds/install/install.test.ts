import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBuiltinLora } from '../../../src/models/builtin-lora.js';
import { buildBuiltinModel } from '../../../src/pipelines/builtin/model-files.js';
import { tarOf, zipOf } from '../../support/archives.js';
import { FakeHub, type RepoFile } from '../../support/fake-hub.js';
import { buildFluxFixture } from '../../support/flux-fixtures.js';
import { collect, follow, modelIdNamed, ok, wsClient } from '../../support/graphql.js';
import { EVENTS, INSTALL, type InstallEvent, installAndWait, MODEL_INSTALL, modelState, workFolderLeft } from '../../support/installs.js';
import { startTestKiln, type TestKiln } from '../../support/kiln.js';
import { GENERATE, GENERATION, PROGRESS } from '../../support/operations.js';
import { startS3Server, type TestS3Server } from '../../support/s3.js';
import { buildSdFixture } from '../../support/sd-fixtures.js';

const sha = (b: Uint8Array | string) => crypto.createHash('sha256').update(b).digest('hex');
const sizeOf = (b: Uint8Array | string) => (typeof b === 'string' ? Buffer.byteLength(b) : b.byteLength);

/** What published repositories carry around a model: Kiln downloads none of it. */
const EXTRAS: RepoFile[] = [
  { path: 'README.md', bytes: '# sd-tiny\n' },
  { path: 'vae_encoder/model.onnx', bytes: crypto.randomBytes(2000) },
  { path: 'unet/diffusion_pytorch_model.safetensors', bytes: crypto.randomBytes(3000) },
];

describe('installing models from a hub repository or a URL', () => {
  let hub: FakeHub;
  let k: TestKiln;
  let client: Client;
  let builtinId: string;

  beforeAll(async () => {
    hub = await FakeHub.start();
    k = await startTestKiln({
      KILN_HF_ENDPOINT: hub.url,
      // The file host and single-file URLs are plain http on loopback.
      KILN_INSTALL_ALLOW_HTTP: 'true',
      KILN_MIN_FREE_DISK_GB: '0',
      KILN_RECONCILE_INTERVAL_S: '1',
    });
    client = wsClient(k.url);
    builtinId = await modelIdNamed(k.gql);
  });
  afterAll(async () => {
    await client?.dispose();
    await k?.stop();
    await hub?.stop();
  });

  const generate = async (input: Record<string, unknown>) => {
    const { generate: g } = await ok(k.gql(GENERATE, { input: { prompt: 'a red fox at dusk', seed: 3, ...input } }));
    await collect(client, PROGRESS, { id: g.id });
    return (await ok(k.gql(GENERATION, { id: g.id }))).generation;
  };
  /** Waits for the housekeeping that removes an ended install's work folder (every second here). */
  const workFolderGone = async (id: string) => {
    for (let i = 0; i < 100 && (await workFolderLeft(k, id)); i++) await new Promise((r) => setTimeout(r, 100));
    return !(await workFolderLeft(k, id));
  };

  it('installs a Stable Diffusion export by repo id, streaming bytes and files, and generates with it', async () => {
    const model = buildSdFixture({ layout: 'optimum' });
    hub.addRepo('kiln/sd-tiny', [...model, ...EXTRAS]);
    const { id, events, install } = await installAndWait(k, client, { source: 'hf:kiln/sd-tiny' });

    expect(install).toMatchObject({ status: 'COMPLETED', name: 'sd-tiny', modelKind: 'BASE', error: null });
    expect(install.model).toMatchObject({ name: 'sd-tiny', kind: 'BASE', pipeline: 'stable-diffusion-onnx' });
    const wanted = model.map((f) => f.path).sort();
    expect(install.model.files.map((f: { path: string }) => f.path)).toEqual(wanted);
    for (const f of model) expect(install.model.files.find((m: { path: string }) => m.path === f.path).sha256).toBe(sha(f.bytes));

    const steps = [...new Set(events.map((e) => e.step))];
    expect(steps).toEqual(['QUEUED', 'DOWNLOADING', 'VERIFYING', 'REGISTERING', 'COMPLETED']);
    expect(events.map((e) => e.progress)).toEqual([...events.map((e) => e.progress)].sort((a, b) => a - b));
    const transfers = events.filter((e) => e.step === 'DOWNLOADING' && e.detail);
    const total = model.reduce((n, f) => n + sizeOf(f.bytes), 0);
    expect(transfers.at(-1)).toMatchObject({ stepIndex: wanted.length, stepCount: wanted.length, detail: { bytesDone: total, bytesTotal: total, filesDone: wanted.length, fileCount: wanted.length } });
    expect(install.transfer).toMatchObject({ bytesDone: total, bytesTotal: total, filesDone: wanted.length });

    // The hub was asked for its paged tree; weights came from its file host, which never saw the token-bearing header.
    expect(hub.served.filter((s) => s.path.startsWith('/api/models/kiln/sd-tiny/tree/')).length).toBeGreaterThan(1);
    expect(hub.transfersOf('kiln/sd-tiny/unet/model.onnx')).toHaveLength(1);
    expect(hub.served.filter((s) => s.path.includes('README') || s.path.includes('vae_encoder') || s.path.includes('.safetensors'))).toEqual([]);

    // Replayed like a generation's: the same events, again, after the end.
    const replay = (await collect<{ generationProgress: InstallEvent }>(client, EVENTS, { id })).map((e) => e.generationProgress);
    expect(replay.map((e) => e.cursor)).toEqual(events.map((e) => e.cursor));

    const generation = await generate({ modelId: install.model.id, steps: 2 });
    expect(generation).toMatchObject({ status: 'COMPLETED', images: [{ width: 64, height: 64 }] });
    expect(await workFolderGone(id)).toBe(true);
  });

  it('installs one FLUX.1 transformer precision of a BFL-layout repository, the one onnxruntime runs', async () => {
    hub.addRepo('kiln/flux-tiny-onnx', buildFluxFixture({ layout: 'bfl', variant: 'schnell', precisions: ['bf16', 'fp16'] }));
    const { install } = await installAndWait(k, client, { source: 'hf:kiln/flux-tiny-onnx', name: 'FLUX.1 tiny' });
    expect(install).toMatchObject({ status: 'COMPLETED', model: { name: 'FLUX.1 tiny', pipeline: 'flux-onnx' } });
    const files: string[] = install.model.files.map((f: { path: string }) => f.path);
    expect(files.filter((f) => f.startsWith('transformer.opt/'))).toEqual(['transformer.opt/fp16/model.onnx']);
    expect(hub.served.some((s) => s.path.includes('transformer.opt%2Fbf16') || s.path.includes('transformer.opt/bf16'))).toBe(false);
  });

  it('downloads KILN_INSTALL_PARALLEL files at once, no more', async () => {
    const graphs = Array.from({ length: 7 }, (_, i) => ({ path: `onnx/part${i}.onnx`, bytes: crypto.randomBytes(4000) }));
    hub.addRepo('kiln/many-files', graphs);
    const holds = graphs.map((g) => hub.hold(`kiln/many-files/${g.path}`, 1000));
    hub.peakTransfers = 0;
    const { installModel } = await ok(k.gql(INSTALL, { input: { source: 'hf:kiln/many-files' } }));
    const ended = collect(client, EVENTS, { id: installModel.id });
    await Promise.all(holds.slice(0, 4).map((h) => h.reached));
    expect(hub.peakTransfers).toBe(4);
    holds.forEach((h) => h.release());
    await ended;
    expect(hub.peakTransfers).toBe(4);
    // Random bytes are no ONNX graphs: intake says so once they are all in.
    expect((await ok(k.gql(MODEL_INSTALL, { id: installModel.id }))).modelInstall.error).toMatchObject({ code: 'INVALID_MODEL' });
  });

  it("installs a LoRA adapter from a hub repository's subfolder", async () => {
    hub.addRepo('kiln/loras', [
      { path: 'README.md', bytes: 'two styles' },
      { path: 'cool/pytorch_lora_weights.safetensors', bytes: makeBuiltinLora({ seed: 11 }) },
      { path: 'cool/preview.png', bytes: crypto.randomBytes(100) },
      { path: 'hot/pytorch_lora_weights.safetensors', bytes: makeBuiltinLora({ seed: 12 }) },
    ]);
    const { install } = await installAndWait(k, client, { source: 'hf:kiln/loras:cool', baseModelId: builtinId });
    expect(install).toMatchObject({ status: 'COMPLETED', name: 'loras/cool', modelKind: 'LORA', model: { kind: 'LORA', pipeline: 'builtin' } });
    expect(install.model.files).toEqual([expect.objectContaining({ path: 'adapter.safetensors', sha256: sha(makeBuiltinLora({ seed: 11 })) })]);
  });

  it('resumes a transfer cut half-way from the byte it reached, in the next attempt', async () => {
    const model = buildSdFixture({ layout: 'ort-turbo' });
    hub.addRepo('kiln/sd-turbo-tiny', model);
    const unet = model.find((f) => f.path === 'unet/model.onnx')!;
    const half = Math.floor(sizeOf(unet.bytes) / 2);
    const held = hub.hold('kiln/sd-turbo-tiny/unet/model.onnx', half);
    const { installModel } = await ok(k.gql(INSTALL, { input: { source: 'hf:kiln/sd-turbo-tiny' } }));
    const finished = collect(client, EVENTS, { id: installModel.id });
    // Cut once the bytes sent are on the worker's disk.
    await held.reached;
    const part = path.join(k.dataDir, 'installs', installModel.id, 'files', 'unet', 'model.onnx.part');
    while ((await fs.stat(part).catch(() => undefined))?.size !== half) await new Promise((r) => setTimeout(r, 20));
    held.cut();
    await finished;
    const { modelInstall: install } = await ok(k.gql(MODEL_INSTALL, { id: installModel.id }));

    expect(install).toMatchObject({ status: 'COMPLETED', retryCount: 1 });
    expect(install.attempts).toMatchObject([{ outcome: 'RETRY', error: { code: 'DOWNLOAD_FAILED', retryable: true } }, { outcome: 'COMPLETED' }]);
    expect(hub.transfersOf('kiln/sd-turbo-tiny/unet/model.onnx').map((t) => t.range)).toEqual([undefined, `bytes=${half}-`]);
    expect(install.model.files.find((f: { path: string }) => f.path === 'unet/model.onnx').sha256).toBe(sha(unet.bytes));
  });

  it('fails a file whose sha256 is not the one the hub lists, and leaves no row and no file', async () => {
    const model = buildSdFixture({ layout: 'optimum', fixedBatch: 1 });
    hub.addRepo('kiln/corrupt', model, { listedSha256: { 'unet/model.onnx': 'ab'.repeat(32) } });
    const before = await modelState(k);
    const { id, install } = await installAndWait(k, client, { source: 'hf:kiln/corrupt' });
    expect(install).toMatchObject({ status: 'FAILED', retryCount: 0, model: null, error: { code: 'CHECKSUM_MISMATCH', retryable: false } });
    expect(install.error.message).toMatch(/unet\/model\.onnx did not download intact: its sha256 is [0-9a-f]{64}, the hub lists (ab){32}/);
    expect(await modelState(k)).toEqual(before);
    expect(await workFolderLeft(k, id)).toBe(false);
  });

  it('refuses a download that is not a model Kiln can run, with the reason, and leaves no row and no file', async () => {
    const model = buildSdFixture({ layout: 'optimum', fixedLatent: 8 }).filter((f) => !f.path.startsWith('text_encoder/'));
    hub.addRepo('kiln/incomplete', model);
    const before = await modelState(k);
    const { id, install } = await installAndWait(k, client, { source: 'hf:kiln/incomplete' });
    expect(install).toMatchObject({ status: 'FAILED', model: null, error: { code: 'INVALID_MODEL', retryable: false } });
    expect(install.error.message).toMatch(/hf:kiln\/incomplete is not a model Kiln can run: .*missing text_encoder\/model\.onnx/);
    expect(await modelState(k)).toEqual(before);
    expect(await workFolderLeft(k, id)).toBe(false);
  });

  it('fails a revision or a file that is not there with SOURCE_NOT_FOUND, and leaves nothing', async () => {
    const before = await modelState(k);
    const revision = await installAndWait(k, client, { source: 'hf:kiln/sd-tiny@v9' });
    expect(revision.install).toMatchObject({ status: 'FAILED', error: { code: 'SOURCE_NOT_FOUND', message: 'hub repository kiln/sd-tiny has no revision v9 (HTTP 404)' } });
    const file = await installAndWait(k, client, { source: `${hub.filesUrl}/dl/missing.safetensors`, baseModelId: builtinId });
    expect(file.install).toMatchObject({ status: 'FAILED', retryCount: 0, error: { code: 'SOURCE_NOT_FOUND', retryable: false } });
    expect(await modelState(k)).toEqual(before);
    expect(await workFolderLeft(k, file.id)).toBe(false);
  });

  it('fails a gated repository without a token with SOURCE_UNAUTHORIZED, saying to set KILN_HF_TOKEN', async () => {
    hub.addRepo('kiln/gated', buildSdFixture({ layout: 'optimum' }), { token: 'hf_gated_only' });
    const { install } = await installAndWait(k, client, { source: 'hf:kiln/gated' });
    expect(install).toMatchObject({ status: 'FAILED', error: { code: 'SOURCE_UNAUTHORIZED', retryable: false } });
    expect(install.error.message).toMatch(/HTTP 401: it is gated or private, or does not exist; set KILN_HF_TOKEN/);
    hub.addRepo('kiln/gated-files', buildSdFixture({ layout: 'optimum', fixedBatch: 3 }), { token: 'hf_gated_only', gatedFilesOnly: true });
    const files = await installAndWait(k, client, { source: 'hf:kiln/gated-files' });
    expect(files.install).toMatchObject({ status: 'FAILED', error: { code: 'SOURCE_UNAUTHORIZED', retryable: false } });
    expect(files.install.error.message).toMatch(/^kiln\/gated-files\/.* answered HTTP 401: it is gated or private, or does not exist; set KILN_HF_TOKEN/);
  });

  it('cancels mid-download: the transfer stops and what it wrote is removed', async () => {
    const model = buildSdFixture({ layout: 'optimum', guidanceEmbedding: 4 });
    hub.addRepo('kiln/slow', model);
    const unet = model.find((f) => f.path === 'unet/model.onnx')!;
    const held = hub.hold('kiln/slow/unet/model.onnx', Math.floor(sizeOf(unet.bytes) / 2));
    const before = await modelState(k);
    const { installModel } = await ok(k.gql(INSTALL, { input: { source: 'hf:kiln/slow' } }));
    const watch = follow<{ generationProgress: InstallEvent }>(client, EVENTS, { id: installModel.id });
    await held.reached;
    await watch.until((v) => v.generationProgress.step === 'DOWNLOADING');
    await ok(k.gql('mutation($id: ID!) { cancelJob(id: $id) { id } }', { id: installModel.id }));
    const events = (await watch.done).map((v) => v.generationProgress);
    expect(events.at(-1)).toMatchObject({ step: 'CANCELLED', status: 'CANCELLED' });
    await held.closed;
    const { modelInstall } = await ok(k.gql(MODEL_INSTALL, { id: installModel.id }));
    expect(modelInstall).toMatchObject({ status: 'CANCELLED', model: null });
    expect(await modelState(k)).toEqual(before);
    expect(await workFolderLeft(k, installModel.id)).toBe(false);
  });

  it('fails the same content already installed with CONFLICT naming the model that has it, keeping nothing', async () => {
    hub.addRepo('kiln/builtin-again', buildBuiltinModel().map((f) => ({ path: f.path, bytes: f.bytes })));
    const before = await modelState(k);
    const { id, install } = await installAndWait(k, client, { source: 'hf:kiln/builtin-again' });
    expect(install).toMatchObject({ status: 'FAILED', model: null, error: { code: 'CONFLICT', retryable: false } });
    expect(install.error.message).toBe(`the same file(s) are already model "kiln-builtin" (${builtinId})`);
    expect(await modelState(k)).toEqual(before);
    expect(await workFolderLeft(k, id)).toBe(false);
  });

  it('installs a LoRA adapter by URL and generates with it', async () => {
    const url = hub.addFile('warm-style.safetensors', makeBuiltinLora({ seed: 7 }));
    const { install } = await installAndWait(k, client, { source: url, baseModelId: builtinId, triggerWord: 'warm' });
    expect(install).toMatchObject({ status: 'COMPLETED', name: 'warm-style', modelKind: 'LORA', model: { kind: 'LORA', pipeline: 'builtin', baseModel: { id: builtinId } } });
    expect(install.model.files).toEqual([expect.objectContaining({ path: 'adapter.safetensors', sha256: sha(makeBuiltinLora({ seed: 7 })) })]);
    const generation = await generate({ loraId: install.model.id, loraWeight: 1 });
    expect(generation.status).toBe('COMPLETED');
  });

  it('installs a model folder from a zip archive, and refuses a tar holding a link', async () => {
    const model = buildSdFixture({ layout: 'optimum', fixedLatent: 8 });
    const zip = zipOf([{ name: 'sd-tiny-8/README.md', bytes: 'about' }, ...model.map((f) => ({ name: `sd-tiny-8/${f.path}`, bytes: f.bytes }))]);
    const { install } = await installAndWait(k, client, { source: hub.addFile('sd-tiny-8.zip', zip) });
    expect(install).toMatchObject({ status: 'COMPLETED', name: 'sd-tiny-8', model: { pipeline: 'stable-diffusion-onnx' } });
    expect(install.model.files.map((f: { path: string }) => f.path)).toEqual(model.map((f) => f.path).sort());

    const before = await modelState(k);
    const tar = tarOf([{ name: 'm/model_index.json', bytes: '{}' }, { name: 'm/unet/model.onnx', linkTo: '/etc/passwd' }], { gzip: true });
    const refused = await installAndWait(k, client, { source: hub.addFile('linked.tar.gz', tar) });
    expect(refused.install).toMatchObject({ status: 'FAILED', error: { code: 'UNSAFE_ARCHIVE', message: 'the archive is refused: m/unet/model.onnx is a link' } });
    expect(await modelState(k)).toEqual(before);
    expect(await workFolderLeft(k, refused.id)).toBe(false);
  });

  it('removes what an ended install left on the host, stored files never registered included, and keeps a running one\'s', async () => {
    // What a worker killed between storing a model's files and registering it leaves, for a job now gone.
    const gone = path.join(k.dataDir, 'installs', crypto.randomUUID());
    const orphan = crypto.randomUUID();
    await fs.mkdir(path.join(gone, 'stored'), { recursive: true });
    await fs.writeFile(path.join(gone, 'stored', orphan), '');
    await fs.mkdir(path.join(gone, 'files'), { recursive: true });
    await fs.writeFile(path.join(gone, 'files', 'model.onnx.part'), 'partial');
    await k.kiln.storage.put(`models/${orphan}/unet/model.onnx`, Buffer.from('stored, never registered'));
    // And an install under way.
    const model = buildSdFixture({ layout: 'ort-turbo', webnnNames: true });
    hub.addRepo('kiln/under-way', model);
    const unet = model.find((f) => f.path === 'unet/model_layernorm.onnx')!;
    const held = hub.hold('kiln/under-way/unet/model_layernorm.onnx', Math.floor(sizeOf(unet.bytes) / 2));
    const { installModel } = await ok(k.gql(INSTALL, { input: { source: 'hf:kiln/under-way' } }));
    await held.reached;

    for (let i = 0; i < 100 && (await fs.stat(gone).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await fs.stat(gone).then(() => true, () => false)).toBe(false);
    expect(await k.kiln.storage.stat(`models/${orphan}/unet/model.onnx`)).toBeUndefined();
    expect(await workFolderLeft(k, installModel.id)).toBe(true);
    held.release();
    await collect(client, EVENTS, { id: installModel.id });
    expect((await ok(k.gql(MODEL_INSTALL, { id: installModel.id }))).modelInstall.status).toBe('COMPLETED');
  });

  it('refuses inputs it can tell are wrong at submit, naming the field', async () => {
    const refusal = async (input: Record<string, unknown>) => (await k.gql(INSTALL, { input })).errors?.[0]?.extensions;
    expect(await refusal({ source: 'ftp://example.com/model.zip' })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.source' });
    expect(await refusal({ source: 'hf:not-a-repo' })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.source' });
    expect(await refusal({ source: 'hf:kiln/sd-tiny@main', revision: 'dev' })).toMatchObject({ field: 'input.revision' });
    expect(await refusal({ source: `${hub.filesUrl}/dl/x.safetensors` })).toMatchObject({ field: 'input.baseModelId' });
    expect(await refusal({ source: 'hf:kiln/lora', kind: 'LORA' })).toMatchObject({ field: 'input.baseModelId' });
    expect(await refusal({ source: 'hf:kiln/sd-tiny', files: ['../secrets'] })).toMatchObject({ field: 'input.files.0' });
  });
});

describe('installing onto S3 storage', () => {
  let hub: FakeHub;
  let s3: TestS3Server;
  let k: TestKiln;
  let client: Client;
  let bucket: S3Client;
  const objects = async () => ((await bucket.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'models/' }))).Contents ?? []).map((o) => o.Key!).sort();

  beforeAll(async () => {
    hub = await FakeHub.start();
    s3 = await startS3Server();
    // The S3 driver takes credentials the usual way, from the AWS environment.
    process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
    k = await startTestKiln({
      KILN_HF_ENDPOINT: hub.url,
      KILN_INSTALL_ALLOW_HTTP: 'true',
      KILN_MIN_FREE_DISK_GB: '0',
      KILN_S3_BUCKET: s3.bucket,
      KILN_S3_ENDPOINT: s3.endpoint,
      KILN_S3_REGION: s3.region,
      KILN_S3_FORCE_PATH_STYLE: 'true',
    });
    client = wsClient(k.url);
    bucket = new S3Client({ region: s3.region, endpoint: s3.endpoint, forcePathStyle: true, credentials: s3.credentials });
  });
  afterAll(async () => {
    bucket?.destroy();
    await client?.dispose();
    await k?.stop();
    await s3?.stop();
    await hub?.stop();
  });

  it('streams the files into the bucket, and takes them out again when the same model is installed twice', async () => {
    const model = buildSdFixture({ layout: 'optimum' });
    hub.addRepo('kiln/sd-s3', model);
    const { install } = await installAndWait(k, client, { source: 'hf:kiln/sd-s3' });
    expect(install).toMatchObject({ status: 'COMPLETED', model: { pipeline: 'stable-diffusion-onnx' } });
    const stored = await objects();
    expect(stored.filter((o) => o.startsWith(`models/${install.model.id}/`))).toEqual(model.map((f) => `models/${install.model.id}/${f.path}`).sort());

    const again = await installAndWait(k, client, { source: 'hf:kiln/sd-s3' });
    expect(again.install).toMatchObject({ status: 'FAILED', error: { code: 'CONFLICT', message: `the same file(s) are already model "sd-s3" (${install.model.id})` } });
    expect(await objects()).toEqual(stored);
    const generation = await (async () => {
      const { generate: g } = await ok(k.gql(GENERATE, { input: { prompt: 'a blue whale', modelId: install.model.id, steps: 1, seed: 1 } }));
      await collect(client, PROGRESS, { id: g.id });
      return (await ok(k.gql(GENERATION, { id: g.id }))).generation;
    })();
    expect(generation.status).toBe('COMPLETED');
  });
});
