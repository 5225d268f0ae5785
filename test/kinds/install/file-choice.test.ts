import { describe, expect, it } from 'vitest';
import { chooseFiles, globPattern } from '../../../src/kinds/install/file-choice.js';

/** Paths as published repositories have them, around the files a model needs. */
const SD = [
  '.gitattributes',
  'README.md',
  'images/sample.png',
  'model_index.json',
  'feature_extractor/preprocessor_config.json',
  'safety_checker/model.onnx',
  'scheduler/scheduler_config.json',
  'text_encoder/config.json',
  'text_encoder/model.onnx',
  'tokenizer/merges.txt',
  'tokenizer/vocab.json',
  'unet/config.json',
  'unet/diffusion_pytorch_model.safetensors',
  'unet/model.onnx',
  'unet/model.onnx_data',
  'unet/model_fp16.onnx',
  'vae_decoder/model.onnx',
  'vae_encoder/model.onnx',
];

const MUSICGEN = [
  'README.md',
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'onnx/text_encoder.onnx',
  'onnx/text_encoder_fp16.onnx',
  'onnx/text_encoder_quantized.onnx',
  'onnx/decoder_model_merged.onnx',
  'onnx/decoder_model_merged_fp16.onnx',
  'onnx/decoder_model_merged_quantized.onnx',
  'onnx/encodec_decode.onnx',
  'onnx/encodec_decode_quantized.onnx',
];

describe('choosing the files of a repository to install', () => {
  it('takes what a Stable Diffusion export needs, without documents, unused parts, PyTorch weights or other precisions', () => {
    expect(chooseFiles(SD, 'BASE', null)).toEqual([
      'model_index.json',
      'scheduler/scheduler_config.json',
      'text_encoder/config.json',
      'text_encoder/model.onnx',
      'tokenizer/merges.txt',
      'tokenizer/vocab.json',
      'unet/config.json',
      'unet/model.onnx',
      'unet/model.onnx_data',
      'vae_decoder/model.onnx',
    ]);
  });

  it('takes one transformer precision of the BFL FLUX.1 layout, fp16 first', () => {
    const bfl = ['clip.opt/model.onnx', 't5.opt/model.onnx', 't5.opt/backbone.onnx_data', 'vae.opt/model.onnx', 'tokenizer/vocab.json', 'tokenizer/merges.txt', 'tokenizer_2/tokenizer.json'];
    const precisions = ['bf16', 'fp8', 'fp16'].flatMap((p) => [`transformer.opt/${p}/model.onnx`, `transformer.opt/${p}/backbone.onnx_data`]);
    const chosen = chooseFiles([...bfl, ...precisions], 'BASE', null);
    expect(chosen.filter((p) => p.startsWith('transformer.opt/'))).toEqual(['transformer.opt/fp16/backbone.onnx_data', 'transformer.opt/fp16/model.onnx']);
    expect(chosen).toEqual(expect.arrayContaining(bfl));
  });

  it('refuses, before downloading, a BFL export with only precisions onnxruntime cannot run, or without tokenizers', () => {
    const parts = ['clip.opt/model.onnx', 't5.opt/model.onnx', 'vae.opt/model.onnx', 'transformer.opt/bf16/model.onnx', 'transformer.opt/fp8/model.onnx'];
    expect(() => chooseFiles([...parts, 'tokenizer/vocab.json', 'tokenizer_2/tokenizer.json'], 'BASE', null)).toThrow(/bf16, fp8 transformers, none of which onnxruntime runs/);
    expect(() => chooseFiles([...parts, 'transformer.opt/fp16/model.onnx'], 'BASE', null)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_MODEL', message: expect.stringMatching(/no tokenizer or tokenizer_2 folder/) }));
  });

  it('takes what an SDXL export needs (both text encoders and tokenizers), and refuses one without its tokenizers before downloading', () => {
    const sdxl = [...SD, 'text_encoder_2/config.json', 'text_encoder_2/model.onnx', 'text_encoder_2/model.onnx_data', 'tokenizer_2/vocab.json', 'tokenizer_2/merges.txt'];
    const chosen = chooseFiles(sdxl, 'BASE', null);
    expect(chosen).toEqual(expect.arrayContaining(['model_index.json', 'text_encoder_2/model.onnx', 'text_encoder_2/model.onnx_data', 'tokenizer_2/vocab.json', 'unet/model.onnx']));
    expect(chosen.filter((p) => /vae_encoder|safety_checker|_fp16|\.safetensors|README/.test(p))).toEqual([]);
    expect(() => chooseFiles(sdxl.filter((p) => !p.startsWith('tokenizer_2/')), 'BASE', null)).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED_MODEL', message: expect.stringMatching(/no tokenizer_2 folder/) }),
    );
  });

  it('takes the built-in layout and the FLUX.1 Optimum layout by their folders', () => {
    expect(chooseFiles(['README.md', 'model_index.json', 'text_encoder.onnx', 'denoiser.onnx'], 'BASE', null)).toEqual(['denoiser.onnx', 'model_index.json', 'text_encoder.onnx']);
    const flux = chooseFiles(['model_index.json', 'transformer/model.onnx', 'transformer/config.json', 'text_encoder_2/model.onnx', 'vae_encoder/model.onnx', 'tokenizer_2/tokenizer.json'], 'BASE', null);
    expect(flux).toEqual(['model_index.json', 'text_encoder_2/model.onnx', 'tokenizer_2/tokenizer.json', 'transformer/config.json', 'transformer/model.onnx']);
  });

  it('takes every model file of a layout no pipeline claims, one precision of each graph', () => {
    expect(chooseFiles(MUSICGEN, 'BASE', null)).toEqual(['config.json', 'generation_config.json', 'onnx/decoder_model_merged.onnx', 'onnx/encodec_decode.onnx', 'onnx/text_encoder.onnx', 'tokenizer.json']);
  });

  it('takes exactly what patterns match, and leaves out what ! patterns match', () => {
    expect(chooseFiles(MUSICGEN, 'BASE', ['*.json', 'onnx/*_quantized.onnx'])).toEqual([
      'config.json',
      'generation_config.json',
      'onnx/decoder_model_merged_quantized.onnx',
      'onnx/encodec_decode_quantized.onnx',
      'onnx/text_encoder_quantized.onnx',
      'tokenizer.json',
    ]);
    expect(chooseFiles(SD, 'BASE', ['**', '!**/*.onnx_data', '!unet/model_fp16.onnx', '!**/*.md', '!**/*.png', '!.gitattributes', '!*/*.safetensors'])).not.toContain('unet/model.onnx_data');
    expect(chooseFiles(SD, 'BASE', ['!unet/config.json'])).not.toContain('unet/config.json');
    expect(() => chooseFiles(SD, 'BASE', ['onnx/*.onnx'])).toThrow(expect.objectContaining({ code: 'NO_MATCHING_FILES' }));
    expect(() => chooseFiles(['a/b/c/d.onnx'], 'BASE', ['**/*.onnx'])).toThrow(/cannot be a model file/);
  });

  it("takes a LoRA repository's one .safetensors file, and asks which one when there are several", () => {
    expect(chooseFiles(['README.md', 'pytorch_lora_weights.safetensors', 'image.png'], 'LORA', null)).toEqual(['pytorch_lora_weights.safetensors']);
    expect(() => chooseFiles(['a.safetensors', 'b.safetensors'], 'LORA', null)).toThrow(/choose one of a.safetensors, b.safetensors with files/);
    expect(chooseFiles(['a.safetensors', 'b.safetensors'], 'LORA', ['b.*'])).toEqual(['b.safetensors']);
    expect(() => chooseFiles(['README.md'], 'LORA', null)).toThrow(expect.objectContaining({ code: 'NO_MODEL_FILES' }));
  });

  it('reads globs as paths: * within a name, ** across folders', () => {
    expect(globPattern('onnx/*.onnx').test('onnx/a.onnx')).toBe(true);
    expect(globPattern('onnx/*.onnx').test('onnx/sub/a.onnx')).toBe(false);
    expect(globPattern('**/*.json').test('config.json')).toBe(true);
    expect(globPattern('**/*.json').test('a/b/config.json')).toBe(true);
    expect(globPattern('unet/model?.onnx').test('unet/model2.onnx')).toBe(true);
    expect(globPattern('a+b(c).json').test('a+b(c).json')).toBe(true);
  });
});
