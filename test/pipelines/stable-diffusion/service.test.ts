import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadModelFolder } from '../../../src/cli/model-upload.js';
import { writeSafetensors } from '../../../src/models/safetensors.js';
import { SeededRandom } from '../../../src/pipelines/random.js';
import { collect, ok, wsClient } from '../../support/graphql.js';
import { startTestKiln, type TestKiln } from '../../support/kiln.js';
import { GENERATE, GENERATION, PROGRESS, progressOf } from '../../support/operations.js';
import { SHARED_FIXTURES } from '../../support/sd-fixtures.js';

const MODEL = path.join(SHARED_FIXTURES, 'sd-tiny');

/** A kohya-format LoRA for two attention projections of the sd-tiny UNet (64 wide there). */
function tinyLora(): Uint8Array {
  const rng = new SeededRandom(21);
  const tensors: Parameters<typeof writeSafetensors>[0] = {};
  for (const module of ['down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q', 'up_blocks_0_attentions_0_transformer_blocks_0_attn2_to_out_0']) {
    tensors[`lora_unet_${module}.lora_down.weight`] = { dtype: 'F32', shape: [4, 64], data: rng.normals(4 * 64, 0.5) };
    tensors[`lora_unet_${module}.lora_up.weight`] = { dtype: 'F32', shape: [64, 4], data: rng.normals(64 * 4, 0.5) };
    tensors[`lora_unet_${module}.alpha`] = { dtype: 'F32', shape: [], data: Float32Array.of(4) };
  }
  return writeSafetensors(tensors);
}

describe.skipIf(!fs.existsSync(path.join(MODEL, 'model_index.json')))('a Stable Diffusion model in the service (the sd-tiny fixture)', () => {
  let k: TestKiln;
  let client: Client;
  let modelId: string;
  let loraId: string;
  let tmp: string;
  beforeAll(async () => {
    k = await startTestKiln();
    client = wsClient(k.url);
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'kiln-sd-lora-'));
    const model = await uploadModelFolder(k.url, MODEL, { name: 'sd-tiny', kind: 'BASE' });
    modelId = model.id;
    await fsp.writeFile(path.join(tmp, 'tiny.safetensors'), tinyLora());
    loraId = (await uploadModelFolder(k.url, path.join(tmp, 'tiny.safetensors'), { name: 'tiny lora', kind: 'LORA', baseModelId: modelId })).id;
  });
  afterAll(async () => {
    await client?.dispose();
    await k?.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  const run = async (input: Record<string, unknown>) => {
    const { generate } = await ok(k.gql(GENERATE, { input: { prompt: 'a lighthouse on a cliff at dusk', modelId, width: 128, height: 128, steps: 4, seed: 1, ...input } }));
    const events = (await collect(client, PROGRESS, { id: generate.id })).map(progressOf);
    const { generation } = await ok(k.gql(GENERATION, { id: generate.id }));
    const png = Buffer.from(await (await fetch(generation.images[0].url)).arrayBuffer());
    const pixels = crypto.createHash('sha256').update(await sharp(png).raw().toBuffer()).digest('hex');
    return { events, generation, pixels };
  };

  it('registers the export as a stable-diffusion-onnx model and runs it step by step', async () => {
    const { generation, events } = await ok(k.gql(`query($id: ID!) { model(id: $id) { pipeline } }`, { id: modelId })).then(async (m) => {
      expect(m.model.pipeline).toBe('stable-diffusion-onnx');
      return run({});
    });
    expect(generation).toMatchObject({ status: 'COMPLETED', images: [{ width: 128, height: 128 }] });
    // One event per UNet run: PNDM, the export's own scheduler, runs one more than the steps.
    const generating = events.filter((e) => e.step === 'GENERATING');
    expect(generating.map((e) => e.stepIndex)).toEqual(Array.from({ length: generating.length }, (_, i) => i + 1));
    expect(generating[0]!.stepCount).toBe(5);
    const preview = events.filter((e) => e.step === 'GENERATING').at(-1)!.preview!;
    expect(preview).toMatch(/^data:image\/png/);
    // A 128² image has 16² latents; its previews are still 64 pixels a side.
    const { width, height } = await sharp(Buffer.from(preview.split(',')[1]!, 'base64')).metadata();
    expect([width, height]).toEqual([64, 64]);
  });

  it('changes the image with another scheduler and with the LoRA, and gives it back without them', async () => {
    const base = await run({});
    expect((await run({ scheduler: 'DDIM' })).pixels).not.toBe(base.pixels);
    const withLora = await run({ loraId, loraWeight: 1 });
    expect(withLora.generation.status).toBe('COMPLETED');
    expect(withLora.pixels).not.toBe(base.pixels);
    expect(withLora.generation.timing.loraLoadMs).toBeGreaterThan(0);
    expect((await run({})).pixels).toBe(base.pixels);
  });
});
