import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { makeBuiltinLora } from '../../src/models/builtin-lora.js';
import { parseLoraAdapter } from '../../src/models/lora-adapter.js';
import { loraBaseFamily } from '../../src/models/lora-family.js';
import { checkLoraFits, loraPatchSet } from '../../src/models/lora-for-model.js';
import { LORA_GRAPHS } from '../../src/models/lora-targets.js';
import { ModelFileError } from '../../src/models/model-file-error.js';
import { loadStableDiffusionPipeline } from '../../src/pipelines/stable-diffusion/pipeline.js';
import { loraFile } from '../support/lora-files.js';
import { maxAbsDiff, mergeByHand } from '../support/lora-math.js';
import { SHARED_FIXTURES } from '../support/sd-fixtures.js';

const SD = path.join(SHARED_FIXTURES, 'sd-tiny');
const FLUX = path.join(SHARED_FIXTURES, 'flux-tiny');
const SD_GRAPHS = LORA_GRAPHS['stable-diffusion'];

/** A kohya SD 1.x LoRA with UNet and text-encoder parts, sized for the sd-tiny fixture (hidden width 32, UNet block 1 64 wide). */
const sdLora = (extra: Record<string, { out: number; in: number[]; rank: number }> = {}, metadata?: Record<string, string>) =>
  parseLoraAdapter(
    loraFile(
      'kohya',
      {
        lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q: { out: 64, in: [64], rank: 4 },
        lora_te_text_model_encoder_layers_0_self_attn_q_proj: { out: 32, in: [32], rank: 2 },
        lora_te_text_model_encoder_layers_1_mlp_fc1: { out: 64, in: [32], rank: 2 },
        ...extra,
      },
      metadata ? { metadata } : {},
    ),
  );

const refusal = async (p: Promise<unknown>): Promise<string> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelFileError);
  return (err as Error).message;
};

describe.skipIf(!existsSync(SD))('a LoRA laid onto a whole Stable Diffusion model', () => {
  it('patches the UNet and the text encoder with their own parts, and the pipeline loads both patched', async () => {
    const adapter = sdLora();
    const set = await loraPatchSet(adapter, 0.9, SD_GRAPHS, SD);
    expect(set.patches.map((p) => p.file)).toEqual(['unet/model.onnx', 'text_encoder/model.onnx']);
    const pipeline = await loadStableDiffusionPipeline(SD, { executionProviders: ['cpu'], graphPatches: set.patches });
    try {
      const report = set.report();
      expect(report.graphs.map((g) => [g.file, g.matched.map((m) => m.initializer)])).toEqual([
        ['unet/model.onnx', ['m.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight']],
        ['text_encoder/model.onnx', ['m.encoder.layers.0.self_attn.q_proj.weight', 'm.encoder.layers.1.mlp.fc1.weight']],
      ]);
      expect(report.skipped).toEqual([]);

      // The text encoder the pipeline runs is the one merged by hand.
      const base = new Uint8Array(await fs.readFile(path.join(SD, 'text_encoder', 'model.onnx')));
      const byHand = mergeByHand(mergeByHand(base, adapter.modules[1]!, 0.9, [{ initializer: 'm.encoder.layers.0.self_attn.q_proj.weight', transposed: false, out: 32, in: 32 }]), adapter.modules[2]!, 0.9, [
        { initializer: 'm.encoder.layers.1.mlp.fc1.weight', transposed: false, out: 64, in: 32 },
      ]);
      const ids = { input_ids: new ort.Tensor('int32', Int32Array.from({ length: 77 }, (_, i) => [49406, 320, 1125, 539][i] ?? 49407), [1, 77]) };
      const hidden = async (session: ort.InferenceSession) => (await session.run(ids)).last_hidden_state!.data as Float32Array;
      const [plain, hand] = await Promise.all([ort.InferenceSession.create(base), ort.InferenceSession.create(byHand)]);
      const [merged, expected, before] = [await hidden(pipeline.sessions.textEncoder), await hidden(hand), await hidden(plain)];
      await Promise.all([plain.release(), hand.release()]);
      expect(maxAbsDiff(merged, expected)).toBeLessThan(1e-4);
      expect(maxAbsDiff(merged, before)).toBeGreaterThan(1e-2);
    } finally {
      await pipeline.release();
    }
  });

  it('takes PEFT text-encoder keys saved from the whole CLIPTextModel (text_model.…) onto an export of its inner module', async () => {
    const adapter = parseLoraAdapter(loraFile('peft', { 'text_encoder.text_model.encoder.layers.0.self_attn.v_proj': { out: 32, in: [32], rank: 2 } }));
    const fit = await checkLoraFits(adapter, SD_GRAPHS, SD);
    expect(fit).toEqual({ modules: 1, matched: 1, graphs: [{ file: 'text_encoder/model.onnx', component: 'text_encoder', matched: 1 }], skipped: [] });
  });

  it('refuses an adapter for another model, counting the modules that matched nothing and naming their keys', async () => {
    const builtin = parseLoraAdapter(makeBuiltinLora());
    expect(await refusal(checkLoraFits(builtin, SD_GRAPHS, SD))).toBe(
      `None of the LoRA's 5 modules matches a weight of this model; 5 matched nothing, for example "denoiser.cond.lora_A.weight", "denoiser.layer1.lora_A.weight", "denoiser.layer2.lora_A.weight".`,
    );
    const renamed = parseLoraAdapter(loraFile('kohya', { lora_unet_down_blocks_7_attentions_0_proj_in: { out: 64, in: [64], rank: 2 } }));
    expect(await refusal(checkLoraFits(renamed, SD_GRAPHS, SD))).toBe(
      `None of the LoRA's 1 modules matches a weight of this model; 1 matched nothing, for example "lora_unet_down_blocks_7_attentions_0_proj_in.lora_down.weight".`,
    );
  });

  it('refuses an adapter that would apply only in part, as generation would', async () => {
    const adapter = sdLora({ lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn3_to_q: { out: 64, in: [64], rank: 2 } });
    expect(await refusal(checkLoraFits(adapter, SD_GRAPHS, SD))).toBe(
      `1 of the LoRA's 4 modules match no weight of this model, for example "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn3_to_q.lora_down.weight", so it would apply only in part.`,
    );
    await expect(loraPatchSet(adapter, 1, SD_GRAPHS, SD).then((s) => s.patches[0]!.open(path.join(SD, 'unet/model.onnx')))).rejects.toThrow(/1 of the LoRA's 2 unet modules match no weight of the graph/);
  });

  it('says which family the metadata names when the LoRA does not fit', async () => {
    const sdxl = parseLoraAdapter(
      loraFile('kohya', { lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q: { out: 640, in: [640], rank: 4 } }, { metadata: { ss_base_model_version: 'sdxl_base_v1-0' } }),
    );
    expect(await refusal(checkLoraFits(sdxl, SD_GRAPHS, SD))).toMatch(/does not fit weight .* Its metadata says it was trained for SDXL \(ss_base_model_version "sdxl_base_v1-0"\)\.$/);
  });
});

describe.skipIf(!existsSync(FLUX))('a LoRA laid onto a FLUX model folder without text encoders', () => {
  it('keeps the text-encoder parts aside and applies the rest', async () => {
    const adapter = parseLoraAdapter(
      loraFile('kohya', {
        lora_unet_double_blocks_0_img_attn_qkv: { out: 96, in: [32], rank: 2 },
        lora_te1_text_model_encoder_layers_0_self_attn_q_proj: { out: 768, in: [768], rank: 2 },
      }),
    );
    const fit = await checkLoraFits(adapter, LORA_GRAPHS.flux, FLUX);
    expect(fit).toMatchObject({ modules: 2, matched: 1, skipped: ['text_encoder:text_model_encoder_layers_0_self_attn_q_proj'] });
    const set = await loraPatchSet(adapter, 1, LORA_GRAPHS.flux, FLUX);
    expect(set.patches.map((p) => p.file)).toEqual(['transformer/model.onnx']);
  });

  it('refuses an adapter whose parts are all for graphs the folder lacks', async () => {
    const te = parseLoraAdapter(loraFile('kohya', { lora_te1_text_model_encoder_layers_0_self_attn_q_proj: { out: 768, in: [768], rank: 2 } }));
    expect(await refusal(checkLoraFits(te, LORA_GRAPHS.flux, FLUX))).toMatch(/^None of the LoRA's 1 modules matches a weight of this model; 1 matched nothing/);
    expect(await refusal(loraPatchSet(te, 1, LORA_GRAPHS.flux, FLUX))).toBe(`The LoRA has no modules for this model's transformer or text_encoder; its modules are for: text_encoder.`);
  });
});

describe('the base family a LoRA records', () => {
  it.each([
    [{ ss_base_model_version: 'sdxl_base_v1-0' }, 'sdxl', 'ss_base_model_version'],
    [{ ss_base_model_version: 'sd_v1' }, 'sd1', 'ss_base_model_version'],
    [{ ss_base_model_version: 'sd_v2' }, 'sd2', 'ss_base_model_version'],
    [{ ss_base_model_version: 'flux1' }, 'flux', 'ss_base_model_version'],
    [{ 'modelspec.architecture': 'flux-1-dev/lora' }, 'flux', 'modelspec.architecture'],
    [{ 'modelspec.architecture': 'stable-diffusion-xl-v1-base/lora' }, 'sdxl', 'modelspec.architecture'],
    [{ 'modelspec.architecture': 'stable-diffusion-v1/lora', ss_base_model_version: 'something else' }, 'sd1', 'modelspec.architecture'],
    [{}, null, null],
  ])('%j → %s', (metadata, family, source) => {
    const found = loraBaseFamily(metadata as Record<string, string>);
    expect(found && [found.family, found.source]).toEqual(family ? [family, source] : null);
  });
});
