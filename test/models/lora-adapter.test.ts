import { describe, expect, it } from 'vitest';
import { parseLoraAdapter } from '../../src/models/lora-adapter.js';
import { ModelFileError } from '../../src/models/model-file-error.js';
import { type TensorToWrite, writeSafetensors } from '../../src/models/safetensors.js';

const t = (shape: number[], fill = 0.5, dtype: TensorToWrite['dtype'] = 'F32'): TensorToWrite => ({
  dtype,
  shape,
  data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill),
});

const summary = (bytes: Uint8Array) =>
  parseLoraAdapter(bytes).modules.map((m) => ({ component: m.component, path: m.path, naming: m.naming, rank: m.rank, alpha: m.alpha, down: m.down.shape, up: m.up.shape }));

describe('reading LoRA adapters', () => {
  it('reads kohya keys: underscored module paths, lora_down/lora_up, alpha, and the text encoders apart', () => {
    const bytes = writeSafetensors({
      'lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight': t([4, 320, 1, 1], 0.5, 'F16'),
      'lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight': t([320, 4, 1, 1], 0.5, 'F16'),
      'lora_unet_down_blocks_0_attentions_0_proj_in.alpha': t([], 2),
      'lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight': t([8, 768]),
      'lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight': t([3072, 8]),
      'lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight': t([8, 1280]),
      'lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight': t([5120, 8]),
    });
    expect(summary(bytes)).toEqual([
      { component: 'unet', path: 'down_blocks_0_attentions_0_proj_in', naming: 'underscored', rank: 4, alpha: 2, down: [4, 320, 1, 1], up: [320, 4, 1, 1] },
      { component: 'text_encoder', path: 'text_model_encoder_layers_0_mlp_fc1', naming: 'underscored', rank: 8, alpha: 8, down: [8, 768], up: [3072, 8] },
      { component: 'text_encoder_2', path: 'text_model_encoder_layers_0_mlp_fc1', naming: 'underscored', rank: 8, alpha: 8, down: [8, 1280], up: [5120, 8] },
    ]);
  });

  it('reads diffusers and PEFT keys: lora_A/lora_B, lora.down/lora.up, attention processors, bare PEFT saves, Kiln’s own', () => {
    const bytes = writeSafetensors({
      'unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight': t([4, 64]),
      'unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight': t([64, 4]),
      'unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q.alpha': t([], 1),
      'unet.down_blocks.0.resnets.0.conv1.lora.down.weight': t([2, 32, 3, 3]),
      'unet.down_blocks.0.resnets.0.conv1.lora.up.weight': t([32, 2, 1, 1]),
      'unet.up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor.to_out_lora.down.weight': t([4, 64]),
      'unet.up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor.to_out_lora.up.weight': t([64, 4]),
      'base_model.model.conv_in.lora_A.weight': t([2, 4, 3, 3]),
      'base_model.model.conv_in.lora_B.weight': t([32, 2, 1, 1]),
      'denoiser.layer2.lora_A.weight': t([2, 32]),
      'denoiser.layer2.lora_B.weight': t([32, 2]),
    });
    expect(summary(bytes).map((m) => [m.component, m.path, m.naming, m.rank, m.alpha])).toEqual([
      ['unet', 'mid_block.attentions.0.transformer_blocks.0.attn1.to_q', 'dotted', 4, 1],
      ['unet', 'down_blocks.0.resnets.0.conv1', 'dotted', 2, 2],
      ['unet', 'up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0', 'dotted', 4, 4],
      [null, 'conv_in', 'dotted', 2, 2],
      ['denoiser', 'layer2', 'dotted', 2, 2],
    ]);
  });

  it('reads FLUX keys: kohya’s lora_unet_/lora_transformer_/lora_te3_, ComfyUI’s diffusion_model. with lora_down/lora_up, and XLabs processors', () => {
    const bytes = writeSafetensors({
      'lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight': t([4, 3072]),
      'lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight': t([9216, 4]),
      'lora_unet_double_blocks_0_img_attn_qkv.alpha': t([], 8),
      'lora_transformer_single_transformer_blocks_0_attn_to_q.lora_down.weight': t([2, 3072]),
      'lora_transformer_single_transformer_blocks_0_attn_to_q.lora_up.weight': t([3072, 2]),
      'lora_te3_encoder_block_0_layer_0_SelfAttention_q.lora_down.weight': t([2, 4096]),
      'lora_te3_encoder_block_0_layer_0_SelfAttention_q.lora_up.weight': t([4096, 2]),
      'diffusion_model.single_blocks.0.linear1.lora_down.weight': t([2, 3072]),
      'diffusion_model.single_blocks.0.linear1.lora_up.weight': t([21504, 2]),
      'double_blocks.0.processor.qkv_lora1.down.weight': t([16, 3072]),
      'double_blocks.0.processor.qkv_lora1.up.weight': t([9216, 16]),
    });
    expect(parseLoraAdapter(bytes).modules.map((m) => [m.component, m.path, m.naming, m.rank, m.alpha, m.key])).toEqual([
      ['unet', 'double_blocks_0_img_attn_qkv', 'underscored', 4, 8, 'lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight'],
      ['transformer', 'single_transformer_blocks_0_attn_to_q', 'underscored', 2, 2, 'lora_transformer_single_transformer_blocks_0_attn_to_q.lora_down.weight'],
      ['text_encoder_3', 'encoder_block_0_layer_0_SelfAttention_q', 'underscored', 2, 2, 'lora_te3_encoder_block_0_layer_0_SelfAttention_q.lora_down.weight'],
      ['diffusion_model', 'single_blocks.0.linear1', 'dotted', 2, 2, 'diffusion_model.single_blocks.0.linear1.lora_down.weight'],
      [null, 'double_blocks.0.processor.qkv_lora1', 'dotted', 16, 16, 'double_blocks.0.processor.qkv_lora1.down.weight'],
    ]);
  });

  const refusals: [string, Record<string, TensorToWrite>, RegExp][] = [
    ['a module without its up matrix', { 'lora_unet_a.lora_down.weight': t([2, 4]) }, /module "a" has no up matrix/],
    ['a DoRA adapter', { 'lora_unet_a.lora_down.weight': t([2, 4]), 'lora_unet_a.lora_up.weight': t([4, 2]), 'lora_unet_a.dora_scale': t([4, 1]) }, /DoRA adapters are not supported/],
    ['a LoHa adapter', { 'lora_unet_a.hada_w1_a': t([4, 2]) }, /is not a kohya .* or diffusers\/PEFT/],
    ['an up matrix of another rank', { 'a.lora_A.weight': t([2, 4]), 'a.lora_B.weight': t([4, 3]) }, /up matrix of shape \[4, 3\], not \[out, 2\]/],
    ['a one-dimensional down matrix', { 'a.lora_A.weight': t([4]), 'a.lora_B.weight': t([4, 4]) }, /down matrix of shape \[4\]/],
    ['an alpha that is not one number', { 'a.lora_A.weight': t([2, 4]), 'a.lora_B.weight': t([4, 2]), 'a.alpha': t([2]) }, /alpha that is not a single number/],
    ['NaN weights', { 'a.lora_A.weight': t([2, 4], NaN), 'a.lora_B.weight': t([4, 2]) }, /NaN or infinite/],
    ['an empty file', {}, /holds no tensors/],
  ];

  it.each(refusals)('refuses %s', (_, tensors, message) => {
    const bytes = writeSafetensors(tensors);
    expect(() => parseLoraAdapter(bytes)).toThrow(ModelFileError);
    expect(() => parseLoraAdapter(bytes)).toThrow(message);
  });

  it('refuses a file that is not safetensors before looking at keys', () => {
    expect(() => parseLoraAdapter(new TextEncoder().encode('not a lora at all'))).toThrow(/^Not a valid safetensors file/);
  });
});
