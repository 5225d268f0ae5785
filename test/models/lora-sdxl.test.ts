import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseLoraAdapter } from '../../src/models/lora-adapter.js';
import { loraPatcher } from '../../src/models/lora-merge.js';
import { loraFile, type ModuleSpec } from '../support/lora-files.js';
import { type HandTarget, maxAbsDiff, mergeByHand, weightValues } from '../support/lora-math.js';
import { onnxCheckFeeds, runGraph } from '../support/onnx-check.js';
import { SHARED_FIXTURES } from '../support/sd-fixtures.js';

const SDXL = path.join(SHARED_FIXTURES, 'sdxl-tiny');
const UNET = path.join(SDXL, 'unet', 'model.onnx');
const WEIGHT = 0.7;

/**
 * One module per kind of layer of the SDXL fixture's UNet (layers_per_block 1), under kohya's
 * names, which follow the original UNet's blocks (input_blocks 1 is down block 0's first resnet,
 * 3 down block 1's first layer, …), and under diffusers' names; with the weight each lands on as
 * the export names it (Linear layers folded to `onnx::MatMul_N` [in, out], convolutions and
 * Gemms under PyTorch's names).
 */
const MODULES: [kohya: string, diffusers: string, spec: ModuleSpec, target: HandTarget][] = [
  [
    'input_blocks_3_1_transformer_blocks_0_attn1_to_q',
    'down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q',
    { out: 64, in: [64], rank: 4, alpha: 2 },
    { initializer: 'onnx::MatMul_2366', transposed: true, out: 64, in: 64 },
  ],
  ['input_blocks_3_1_proj_in', 'down_blocks.1.attentions.0.proj_in', { out: 64, in: [64], rank: 2 }, { initializer: 'onnx::MatMul_2365', transposed: true, out: 64, in: 64 }],
  [
    'middle_block_1_transformer_blocks_0_ff_net_2',
    'mid_block.attentions.0.transformer_blocks.0.ff.net.2',
    { out: 64, in: [256], rank: 2 },
    { initializer: 'onnx::MatMul_2445', transposed: true, out: 64, in: 256 },
  ],
  // A LoCon: 3×3 convolutions of a resnet and of an upsampler.
  [
    'input_blocks_1_0_in_layers_2',
    'down_blocks.0.resnets.0.conv1',
    { out: 32, in: [32, 3, 3], rank: 4 },
    { initializer: 'unet.down_blocks.0.resnets.0.conv1.weight', transposed: false, out: 32, in: 288 },
  ],
  ['output_blocks_1_2_conv', 'up_blocks.0.upsamplers.0.conv', { out: 64, in: [64, 3, 3], rank: 2 }, { initializer: 'unet.up_blocks.0.upsamplers.0.conv.weight', transposed: false, out: 64, in: 576 }],
  ['time_embed_0', 'time_embedding.linear_1', { out: 128, in: [32], rank: 2 }, { initializer: 'unet.time_embedding.linear_1.weight', transposed: false, out: 128, in: 32 }],
];

describe.skipIf(!existsSync(UNET))('LoRAs on an SDXL UNet exported from diffusers', () => {
  const kohya = parseLoraAdapter(loraFile('kohya', Object.fromEntries(MODULES.map(([k, , spec]) => [`lora_unet_${k}`, spec]))));
  const peft = parseLoraAdapter(loraFile('peft', Object.fromEntries(MODULES.map(([, d, spec]) => [`unet.${d}`, spec]))));

  it('maps kohya’s original-UNet names and diffusers’ names onto the same weights, with the same output as merging by hand', async () => {
    const base = new Uint8Array(await fs.readFile(UNET));
    const merged: Uint8Array[] = [];
    for (const adapter of [kohya, peft]) {
      const patcher = loraPatcher(adapter, WEIGHT, { file: 'unet/model.onnx', component: 'unet' });
      const patched = await patcher.open(UNET);
      await patched.dispose();
      expect(patcher.report().matched.map((m) => m.initializer)).toEqual(MODULES.map(([, , , t]) => t.initializer));
      merged.push(patched.bytes);
    }
    // Both adapters hold the same matrices (same seed, same shapes, same order).
    expect(Buffer.from(merged[0]!).equals(Buffer.from(merged[1]!))).toBe(true);

    let hand: Uint8Array = base;
    for (const [, diffusers, , target] of MODULES) hand = mergeByHand(hand, peft.modules.find((m) => m.path === diffusers)!, WEIGHT, [target]);
    for (const [, , , t] of MODULES) expect(maxAbsDiff(weightValues(merged[0]!, t.initializer), weightValues(hand, t.initializer)), t.initializer).toBeLessThan(1e-5);

    const feeds = await onnxCheckFeeds(SDXL, 'unet', 0);
    const [before, after, expected] = [await runGraph(base, feeds), await runGraph(merged[0]!, feeds), await runGraph(hand, feeds)];
    expect(maxAbsDiff(after, expected)).toBeLessThan(1e-4);
    expect(maxAbsDiff(before, after)).toBeGreaterThan(1e-2);
  });

  it('refuses an SD 1.x LoRA, whose layers are narrower than SDXL’s', async () => {
    const sd15 = parseLoraAdapter(loraFile('kohya', { lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q: { out: 640, in: [640], rank: 4 } }));
    await expect(loraPatcher(sd15, 1, { file: 'unet/model.onnx' }).open(UNET)).rejects.toThrow(
      /LoRA module "down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q" \(down \[4, 640\], up \[640, 4\]\) does not fit weight "onnx::MatMul_2366" of shape \[64, 64\]/,
    );
  });
});
