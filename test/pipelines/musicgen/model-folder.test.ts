import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { audioPipelineFor, declareMusicgenModel } from '../../../src/pipelines/audio-pipelines.js';
import { writeBuiltinMusicModel } from '../../../src/pipelines/builtin-music/model-files.js';
import { inspectMusicgenFolder, MusicgenFolderError } from '../../../src/pipelines/musicgen/model-folder.js';
import { loadMusicgenPipeline } from '../../../src/pipelines/musicgen/pipeline.js';
import { FIXTURE, type MusicgenFixtureOptions, writeMusicgenFixture } from '../../support/musicgen-fixtures.js';
import { hasMusicgenReference, MUSICGEN_MODEL, referenceTitle } from '../../support/musicgen-reference.js';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true }))));

async function folder(options: MusicgenFixtureOptions | null, edit?: (dir: string) => Promise<void>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-musicgen-folder-'));
  dirs.push(dir);
  if (options) await writeMusicgenFixture(dir, options);
  await edit?.(dir);
  return dir;
}

async function problemsOf(dir: string, variant?: string): Promise<string[]> {
  const err = await inspectMusicgenFolder(dir, { variant }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MusicgenFolderError);
  expect((err as MusicgenFolderError).code).toBe('BAD_USER_INPUT');
  return (err as MusicgenFolderError).problems;
}

describe('MusicGen folder inspection', () => {
  it("recognises Optimum's layout (graphs beside the configs) and transformers.js' (graphs in onnx/), merged or split", async () => {
    const optimum = await inspectMusicgenFolder(await folder({ layout: 'optimum' }));
    expect(optimum.layout).toBe('optimum');
    expect(optimum.graphs).toEqual({ textEncoder: 'text_encoder.onnx', decoder: { merged: 'decoder_model_merged.onnx' }, encodecDecode: 'encodec_decode.onnx' });
    const js = await inspectMusicgenFolder(await folder({ layout: 'transformers-js', decoder: 'split' }));
    expect(js.layout).toBe('transformers-js');
    expect(js.graphs).toEqual({ textEncoder: 'onnx/text_encoder.onnx', decoder: { first: 'onnx/decoder_model.onnx', withPast: 'onnx/decoder_with_past_model.onnx' }, encodecDecode: 'onnx/encodec_decode.onnx' });
    expect(js.files).toEqual(['config.json', 'generation_config.json', 'onnx/decoder_model.onnx', 'onnx/decoder_with_past_model.onnx', 'onnx/encodec_decode.onnx', 'onnx/text_encoder.onnx', 'tokenizer.json', 'tokenizer_config.json']);
  });

  it('reads the model from config.json: codebooks, channels, pad id = vocab size, 50 frames/s from the codec, mono or stereo', async () => {
    const stereo = await inspectMusicgenFolder(await folder({ layout: 'optimum', channels: 2 }));
    expect([stereo.codebooks, stereo.channels, stereo.vocabSize, stereo.padTokenId, stereo.decoderStartTokenId]).toEqual([8, 2, FIXTURE.vocab, FIXTURE.vocab, FIXTURE.vocab]);
    expect([stereo.sampleRate, stereo.frameRate]).toEqual([FIXTURE.sampleRate, FIXTURE.sampleRate / 16]);
  });

  it.skipIf(!hasMusicgenReference)(referenceTitle('reads the reference export: 4 codebooks, 32 kHz, 50 frames/s, defaults from generation_config.json'), async () => {
    const f = await inspectMusicgenFolder(MUSICGEN_MODEL);
    expect([f.layout, f.codebooks, f.channels, f.vocabSize, f.sampleRate, f.frameRate, f.minFrames]).toEqual(['optimum', 4, 1, 128, 32000, 50, 4]);
    expect(f.defaults).toEqual({ durationSeconds: 8, guidanceScale: 3, topK: 250, temperature: 1 });
    expect(f.files).not.toContain('build_delay_pattern_mask.onnx');
  });

  it('takes fp32 where it exists, then fp16, then 8-bit, then 4-bit, each graph on its own', async () => {
    const all = await inspectMusicgenFolder(await folder({ layout: 'transformers-js', extraVariants: ['fp16', 'quantized', 'q4'] }));
    expect(all.variants).toEqual({ textEncoder: 'fp32', decoder: 'fp32', encodecDecode: 'fp32' });
    const noFp32 = await inspectMusicgenFolder(await folder({ layout: 'transformers-js', omitFp32: true, extraVariants: ['q4', 'quantized', 'fp16'] }));
    expect(noFp32.variants).toEqual({ textEncoder: 'fp16', decoder: 'fp16', encodecDecode: 'fp16' });
    expect(noFp32.graphs.decoder).toEqual({ merged: 'onnx/decoder_model_merged_fp16.onnx' });
    const quantizedOnly = await inspectMusicgenFolder(await folder({ layout: 'optimum', omitFp32: true, extraVariants: ['q4', 'quantized'] }));
    expect(quantizedOnly.graphs.textEncoder).toBe('text_encoder_quantized.onnx');
  });

  it('takes an asked-for variant for every graph that has it, and the usual order for the others', async () => {
    const dir = await folder({ layout: 'transformers-js', extraVariants: ['quantized'] }, (d) => fs.rm(path.join(d, 'onnx/encodec_decode_quantized.onnx')));
    const f = await inspectMusicgenFolder(dir, { variant: 'quantized' });
    expect(f.variants).toEqual({ textEncoder: 'quantized', decoder: 'quantized', encodecDecode: 'fp32' });
    expect(f.graphs.decoder).toEqual({ merged: 'onnx/decoder_model_merged_quantized.onnx' });
    const pipeline = await loadMusicgenPipeline(dir, { executionProviders: ['cpu'], intraOpThreads: 1, variant: 'quantized' });
    await pipeline.release();
    expect(await problemsOf(dir, 'q4f16')).toEqual(['no graph in variant q4f16 (files named *_q4f16.onnx)']);
    expect(await problemsOf(dir, 'int3')).toEqual(['unknown variant "int3" (variants: fp32, fp16, quantized, int8, uint8, q4f16, q4, bnb4)']);
  });

  it('lists every problem of a broken folder at once', async () => {
    const dir = await folder({ layout: 'optimum' }, async (d) => {
      await fs.rm(path.join(d, 'tokenizer.json'));
      await fs.rm(path.join(d, 'decoder_model_merged.onnx'));
      await fs.writeFile(path.join(d, 'decoder_model.onnx'), 'first step only');
      await fs.writeFile(path.join(d, 'generation_config.json'), '{"guidance_scale": "loud"}');
      const config = JSON.parse(await fs.readFile(path.join(d, 'config.json'), 'utf8'));
      config.decoder.num_codebooks = 3;
      config.decoder.audio_channels = 2;
      delete config.audio_encoder.upsampling_ratios;
      await fs.writeFile(path.join(d, 'config.json'), JSON.stringify(config));
    });
    expect(await problemsOf(dir)).toEqual([
      'missing tokenizer.json (the T5 tokenizer; Kiln runs offline, so it must be in the folder)',
      'missing decoder_model_merged.onnx (or decoder_model.onnx with decoder_with_past_model.onnx, or a variant of them) in the folder',
      'config.json: decoder.num_codebooks (3) does not split into 2 channels',
      'config.json: audio_encoder has neither frame_rate nor upsampling_ratios, so its frame rate is unknown',
      'generation_config.json: guidance_scale is "loud", which Kiln cannot use',
    ]);
  });

  it('says what is missing in an empty folder and refuses other models, MusicGen Melody included', async () => {
    expect(await problemsOf(await folder(null))).toEqual([
      'missing config.json',
      'missing tokenizer.json (the T5 tokenizer; Kiln runs offline, so it must be in the folder)',
      "missing text_encoder.onnx (or a variant of it) in the folder (Optimum's layout) or in onnx/ (transformers.js')",
      "missing encodec_decode.onnx (or a variant of it) in the folder (Optimum's layout) or in onnx/ (transformers.js')",
      "missing decoder_model_merged.onnx (or decoder_model.onnx with decoder_with_past_model.onnx, or a variant of them) in the folder (Optimum's layout) or in onnx/ (transformers.js')",
    ]);
    const melody = await folder({ layout: 'optimum' }, async (d) => fs.writeFile(path.join(d, 'config.json'), JSON.stringify({ model_type: 'musicgen_melody' })));
    expect(await problemsOf(melody)).toEqual(['config.json: this is a MusicGen Melody model (chroma-conditioned), which the musicgen-onnx pipeline does not run']);
  });

  it('refuses at load a decoder whose graph lacks what the pipeline feeds it', async () => {
    const dir = await folder({ layout: 'optimum', decoder: 'split' }, async (d) => {
      await fs.copyFile(path.join(d, 'decoder_model.onnx'), path.join(d, 'decoder_with_past_model.onnx'));
    });
    await expect(loadMusicgenPipeline(dir, { executionProviders: ['cpu'] })).rejects.toThrow(
      'not a usable MusicGen ONNX folder: decoder_with_past_model.onnx takes no past_key_values inputs, so it cannot continue from a cache',
    );
  });

  it('takes defaults from generation_config.json: do_sample false means greedy', async () => {
    const dir = await folder({ layout: 'optimum' }, (d) => fs.writeFile(path.join(d, 'generation_config.json'), JSON.stringify({ do_sample: false, guidance_scale: 4.5, top_k: 50 })));
    expect((await inspectMusicgenFolder(dir)).defaults).toEqual({ durationSeconds: 8, guidanceScale: 4.5, topK: 50, temperature: 0 });
  });

  it('declares what the model accepts, and finds the pipeline a folder is for', async () => {
    const dir = await folder({ layout: 'optimum', channels: 2 });
    const declaration = declareMusicgenModel(await inspectMusicgenFolder(dir), 123);
    expect(declaration).toEqual({
      pipeline: 'musicgen-onnx',
      // 256 positions: 255 decoder steps, 3 of them the delay pattern's, at 50 frames a second.
      durationSeconds: { min: 1, max: 5.04, default: 5.04 },
      guidanceScale: { min: 0, max: 20, default: 3 },
      topK: { min: 0, max: FIXTURE.vocab, default: FIXTURE.vocab },
      temperature: { min: 0, max: 4, default: 1 },
      sampleRate: FIXTURE.sampleRate,
      channels: 2,
      frameRate: 50,
      stepsPerFrame: 1,
      extraSteps: 3,
      tokensPerSecond: 123,
    });
    expect((await audioPipelineFor(dir))?.name).toBe('musicgen-onnx');
    expect((await audioPipelineFor(await writeBuiltinMusicModel(await folder(null))))?.name).toBe('builtin-music');
    expect(await audioPipelineFor(await folder(null))).toBeNull();
  });
});
