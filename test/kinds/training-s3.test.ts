import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatasetDirect } from '../support/dataset-uploads.js';
import { collect, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE, GENERATION, PROGRESS } from '../support/operations.js';
import { startS3Server, type TestS3Server } from '../support/s3.js';
import { paint, PICTURES } from '../support/training-datasets.js';
import { TRAIN, TRAINING, TRAINING_PROGRESS } from '../support/training-operations.js';

/** With S3 storage the worker fetches the dataset and keeps checkpoints in the bucket, not on a shared disk. */
describe('training with S3 storage (s3rver)', () => {
  let s3: TestS3Server;
  let k: TestKiln;
  let client: Client;
  let bucket: S3Client;

  beforeAll(async () => {
    s3 = await startS3Server();
    process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
    k = await startTestKiln({ KILN_S3_BUCKET: s3.bucket, KILN_S3_ENDPOINT: s3.endpoint, KILN_S3_REGION: s3.region, KILN_S3_FORCE_PATH_STYLE: 'true' });
    client = wsClient(k.url);
    bucket = new S3Client({ region: s3.region, endpoint: s3.endpoint, forcePathStyle: true, credentials: s3.credentials });
  });
  afterAll(async () => {
    bucket?.destroy();
    await client?.dispose();
    await k?.stop();
    await s3?.stop();
  });

  const keys = async (prefix: string) => ((await bucket.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!).sort();

  it('takes a dataset by presigned PUTs, trains from it, keeps checkpoints in the bucket and generates with the result', async () => {
    const files = [];
    for (const [i, p] of PICTURES.slice(0, 5).entries()) files.push({ name: `${i}.png`, bytes: await paint(p.paint, 32) }, { name: `${i}.txt`, bytes: p.caption });
    const dataset = (await ok(createDatasetDirect(k.gql, files, { name: 's3 pictures' }))).completeDatasetUpload;
    expect(await keys(`datasets/${dataset.id}/`)).toEqual([...['001', '002', '003', '004', '005'].flatMap((n) => [`datasets/${dataset.id}/${n}.png`, `datasets/${dataset.id}/${n}.txt`]), `datasets/${dataset.id}/manifest.json`].sort());
    expect(await keys('dataset-uploads/')).toEqual([]);

    const { trainLora } = await ok(k.gql(TRAIN, { input: { datasetId: dataset.id, name: 's3 lora', triggerWord: 'kilnstyle', steps: 12, resolution: 16, checkpointEvery: 4, sampleEvery: 0 } }));
    await collect(client, TRAINING_PROGRESS, { id: trainLora.id });
    const { training } = await ok(k.gql(TRAINING, { id: trainLora.id }));
    expect(training).toMatchObject({ status: 'COMPLETED', model: { id: trainLora.id, kind: 'LORA' } });
    expect(await keys(`models/${trainLora.id}/`)).toEqual([`models/${trainLora.id}/adapter.safetensors`]);
    const checkpoints = await keys(`jobs/${trainLora.id}/checkpoints/`);
    expect(checkpoints).toContain(`jobs/${trainLora.id}/checkpoints/latest-1.json`);
    expect(checkpoints).toContain(`jobs/${trainLora.id}/checkpoints/1-12/0`);

    const { generate } = await ok(k.gql(GENERATE, { input: { prompt: 'kilnstyle, a red square', loraId: trainLora.id, steps: 4, width: 64, height: 64, seed: 2 } }));
    await collect(client, PROGRESS, { id: generate.id });
    expect((await ok(k.gql(GENERATION, { id: generate.id }))).generation.status).toBe('COMPLETED');
  });
});
