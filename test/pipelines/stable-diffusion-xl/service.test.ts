import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadModelFolder } from '../../../src/cli/model-upload.js';
import { readPngText } from '../../../src/media/png-text.js';
import { collect, ok, wsClient } from '../../support/graphql.js';
import { startTestKiln, type TestKiln } from '../../support/kiln.js';
import { GENERATE, GENERATION, PROGRESS, progressOf, stepLabel } from '../../support/operations.js';
import { writeSdxlFixture } from '../../support/sdxl-fixtures.js';

describe('an SDXL model in the service (a tiny generated folder with its two text encoders)', () => {
  let k: TestKiln;
  let client: Client;
  let tmp: string;
  let modelId: string;
  beforeAll(async () => {
    k = await startTestKiln();
    client = wsClient(k.url);
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-sdxl-service-'));
    modelId = (await uploadModelFolder(k.url, await writeSdxlFixture(path.join(tmp, 'xl')), { name: 'sdxl tiny', kind: 'BASE' })).id;
  });
  afterAll(async () => {
    await client?.dispose();
    await k?.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('is recognised at upload and says what it accepts', async () => {
    const { model } = await ok(k.gql(`query($id: ID!) { model(id: $id) { pipeline capabilities { ... on ImageCapabilities { schedulers sizeConditioning negativePrompt width { multipleOf } } } } }`, { id: modelId }));
    expect(model).toMatchObject({ pipeline: 'stable-diffusion-xl-onnx', capabilities: { sizeConditioning: true, negativePrompt: true, width: { multipleOf: 16 } } });
    expect(model.capabilities.schedulers).toEqual(expect.arrayContaining(['euler', 'ddim']));
  });

  it('generates from a prompt with its size conditioning, recorded in the PNG', async () => {
    const input = { prompt: 'a red fox', negativePrompt: 'blue', modelId, width: 64, height: 64, steps: 2, seed: 3, originalSize: [128, 128], cropsCoordsTopLeft: [8, 0] };
    const { generate } = await ok(k.gql(GENERATE, { input }));
    const events = (await collect(client, PROGRESS, { id: generate.id })).map(progressOf);
    expect(events.map(stepLabel)).toEqual(['QUEUED', 'LOADING_MODEL', 'ENCODING_PROMPT', 'GENERATING 1', 'GENERATING 2', 'SAVING', 'COMPLETED']);
    const { generation } = await ok(k.gql(GENERATION, { id: generate.id }));
    const png = Buffer.from(await (await fetch(generation.images[0].url)).arrayBuffer());
    expect(JSON.parse(readPngText(png).parameters!)).toMatchObject({ originalSize: [128, 128], cropsCoordsTopLeft: [8, 0], targetSize: null, steps: 2 });
  });

  it('refuses size conditioning for a model that does not take it, and sizes off its grid', async () => {
    const builtin = await k.gql(GENERATE, { input: { prompt: 'x', originalSize: [64, 64] } });
    expect(builtin.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.originalSize' });
    const offGrid = await k.gql(GENERATE, { input: { prompt: 'x', modelId, width: 72 } });
    expect(offGrid.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.width' });
  });
});
