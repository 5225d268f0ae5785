import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadModelFolder } from '../../../src/cli/model-upload.js';
import { collect, ok, wsClient } from '../../support/graphql.js';
import { writeFluxFixture } from '../../support/flux-fixtures.js';
import { startTestKiln, type TestKiln } from '../../support/kiln.js';
import { GENERATE, GENERATION, PROGRESS, progressOf, stepLabel } from '../../support/operations.js';

const CAPABILITIES = /* GraphQL */ `query($id: ID!) { model(id: $id) { pipeline capabilities { ... on ImageCapabilities {
  schedulers negativePrompt lora steps { min max default } guidanceScale { min max default } width { multipleOf default } } } } }`;

describe('FLUX.1 models in the service (tiny generated folders with text encoders)', () => {
  let k: TestKiln;
  let client: Client;
  let tmp: string;
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    k = await startTestKiln();
    client = wsClient(k.url);
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-flux-service-'));
    for (const variant of ['schnell', 'dev'] as const) {
      const dir = await writeFluxFixture(path.join(tmp, variant), { layout: 'optimum', variant });
      ids[variant] = (await uploadModelFolder(k.url, dir, { name: `flux ${variant}`, kind: 'BASE' })).id;
    }
  });
  afterAll(async () => {
    await client?.dispose();
    await k?.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('are recognised at upload and say what they accept', async () => {
    const schnell = (await ok(k.gql(CAPABILITIES, { id: ids.schnell }))).model;
    expect(schnell).toEqual({
      pipeline: 'flux-onnx',
      capabilities: {
        schedulers: [],
        negativePrompt: false,
        lora: true,
        steps: { min: 1, max: 100, default: 4 },
        guidanceScale: { min: 0, max: 0, default: 0 },
        width: { multipleOf: 16, default: 1024 },
      },
    });
    expect((await ok(k.gql(CAPABILITIES, { id: ids.dev }))).model.capabilities).toMatchObject({ guidanceScale: { min: 0, max: 20, default: 3.5 }, steps: { default: 28 } });
  });

  it('generate from a prompt through the queue and the worker, step by step', async () => {
    for (const variant of ['schnell', 'dev']) {
      const { generate } = await ok(k.gql(GENERATE, { input: { prompt: 'a red fox at dusk', modelId: ids[variant], width: 80, height: 64, steps: 3, seed: 5 } }));
      const events = (await collect(client, PROGRESS, { id: generate.id })).map(progressOf);
      expect(events.map(stepLabel)).toEqual(['QUEUED', 'LOADING_MODEL', 'ENCODING_PROMPT', 'GENERATING 1', 'GENERATING 2', 'GENERATING 3', 'SAVING', 'COMPLETED']);
      const { generation } = await ok(k.gql(GENERATION, { id: generate.id }));
      expect(generation.images).toEqual([expect.objectContaining({ width: 80, height: 64, mimeType: 'image/png' })]);
    }
  });

  it('refuse at submit what FLUX does not take: a negative prompt, guidance for schnell, sizes off the 16 grid', async () => {
    const refused = async (input: Record<string, unknown>) => (await k.gql(GENERATE, { input: { prompt: 'a whale', ...input } })).errors?.[0]?.extensions;
    expect(await refused({ modelId: ids.dev, negativePrompt: 'blurry' })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.negativePrompt' });
    expect(await refused({ modelId: ids.schnell, guidanceScale: 3.5 })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.guidanceScale' });
    expect(await refused({ modelId: ids.dev, width: 72 })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.width' });
  });

  it('refuse at upload a folder that can only run from embeddings, saying why', async () => {
    const dir = await writeFluxFixture(path.join(tmp, 'bare'), { layout: 'optimum', variant: 'dev', textEncoders: false });
    await expect(uploadModelFolder(k.url, dir, { name: 'bare', kind: 'BASE' })).rejects.toThrow(/no text encoders and tokenizers: it runs from prompt embeddings only/);
  });
});
