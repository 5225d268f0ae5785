import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMusicgenPipeline } from '../../../src/pipelines/musicgen/pipeline.js';
import { expectedGreedyCodes, FIXTURE, frameValue, type MusicgenFixtureOptions, writeMusicgenFixture } from '../../support/musicgen-fixtures.js';

/**
 * The pipeline over the export shapes it reads, on generated tiny folders whose greedy codes
 * follow from a formula (musicgen-fixtures.ts): both layouts, merged and split decoders, fp32
 * and fp16 boundaries, mono and stereo.
 */
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true }))));

async function fixture(options: MusicgenFixtureOptions): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-musicgen-'));
  dirs.push(dir);
  return writeMusicgenFixture(dir, options);
}

const greedy = { prompt: 'a b c', guidanceScale: 3, seed: 0, topK: 0, temperature: 0 };
const hooks = () => ({ signal: new AbortController().signal, onStep: () => {} });

describe('musicgen-onnx over the layouts and precisions of MusicGen exports', () => {
  const cases: MusicgenFixtureOptions[] = [
    { layout: 'optimum' },
    { layout: 'optimum', decoder: 'split' },
    { layout: 'transformers-js', float: 'fp16' },
    { layout: 'transformers-js', channels: 2 },
    { layout: 'optimum', channels: 2, decoder: 'split', float: 'fp16' },
  ];
  for (const options of cases) {
    it(`decodes greedily through the delay pattern and the KV cache: ${JSON.stringify(options)}`, async () => {
      const pipeline = await loadMusicgenPipeline(await fixture(options), { executionProviders: ['cpu'], intraOpThreads: 1 });
      try {
        const channels = options.channels ?? 1;
        for (const maxNewTokens of [6, 13]) {
          const result = await pipeline.generateWithDetails({ ...greedy, maxNewTokens }, hooks(), () => {});
          expect(result.inputIds).toEqual([1, 2, 3, FIXTURE.eos]);
          expect(result.outputs[0]!.codes).toEqual(expectedGreedyCodes(channels, maxNewTokens));
          expect(result.outputs[0]!.channels).toBe(channels);
        }
      } finally {
        await pipeline.release();
      }
    });
  }

  it('delays stereo codebooks in pairs (2k and 2k + 1 by k) and frames = max_new_tokens − 4 + 1, as for mono', async () => {
    const pipeline = await loadMusicgenPipeline(await fixture({ layout: 'optimum', channels: 2 }), { executionProviders: ['cpu'], intraOpThreads: 1 });
    try {
      const result = await pipeline.generateWithDetails({ ...greedy, maxNewTokens: 10 }, hooks(), () => {});
      const pad = FIXTURE.vocab;
      expect(result.delayedSequences[0]!.map((row) => row.map((id) => (id === pad ? 'P' : '·')).join(''))).toEqual([
        'P·······PPP',
        'P·······PPP',
        'PP·······PP',
        'PP·······PP',
        'PPP·······P',
        'PPP·······P',
        'PPPP·······',
        'PPPP·······',
      ]);
      expect(result.outputs[0]!.codes[0]!.length).toBe(7);
    } finally {
      await pipeline.release();
    }
  });

  it('decodes the even codebooks as the left channel and the odd ones as the right, interleaved', async () => {
    const pipeline = await loadMusicgenPipeline(await fixture({ layout: 'transformers-js', channels: 2 }), { executionProviders: ['cpu'], intraOpThreads: 1 });
    try {
      const [output] = (await pipeline.generate({ ...greedy, maxNewTokens: 9, numOutputs: 2 }, hooks())).outputs;
      const codes = output!.codes;
      const frames = codes[0]!.length;
      expect(output!.samples.length).toBe(frames * FIXTURE.hop * 2);
      for (let t = 0; t < frames; t++) {
        const left = frameValue([0, 2, 4, 6].map((k) => codes[k]![t]!));
        const right = frameValue([1, 3, 5, 7].map((k) => codes[k]![t]!));
        expect(left).not.toBeCloseTo(right, 3);
        for (const i of [0, FIXTURE.hop - 1]) {
          const n = t * FIXTURE.hop + i;
          expect(output!.samples[2 * n]).toBeCloseTo(left, 5);
          expect(output!.samples[2 * n + 1]).toBeCloseTo(right, 5);
        }
      }
    } finally {
      await pipeline.release();
    }
  });

  it("has a decoder that breaks when a cache step gets an empty cross-attention cache (so the tests above prove it is kept from the first step)", async () => {
    const dir = await fixture({ layout: 'optimum' });
    const session = await ort.InferenceSession.create(path.join(dir, 'decoder_model_merged.onnx'));
    const { heads, headDim, textWidth } = FIXTURE;
    const feeds = (crossLength: number): Record<string, ort.Tensor> => {
      const f: Record<string, ort.Tensor> = {
        encoder_attention_mask: new ort.Tensor('int64', BigInt64Array.of(1n, 1n), [1, 2]),
        input_ids: new ort.Tensor('int64', new BigInt64Array(4).fill(16n), [4, 1]),
        encoder_hidden_states: new ort.Tensor('float32', new Float32Array(2 * textWidth).fill(0.5), [1, 2, textWidth]),
        use_cache_branch: new ort.Tensor('bool', Uint8Array.of(1), [1]),
      };
      for (let l = 0; l < FIXTURE.layers; l++) {
        for (const p of ['key', 'value']) {
          f[`past_key_values.${l}.decoder.${p}`] = new ort.Tensor('float32', new Float32Array(heads * headDim), [1, heads, 1, headDim]);
          f[`past_key_values.${l}.encoder.${p}`] = new ort.Tensor('float32', new Float32Array(heads * crossLength * headDim), [1, heads, crossLength, headDim]);
        }
      }
      return f;
    };
    try {
      const kept = await session.run(feeds(2));
      expect(Array.from(kept.logits!.data as Float32Array).every(Number.isFinite)).toBe(true);
      expect(kept['present.0.encoder.key']!.dims[0]).toBe(0);
      const empty = await session.run(feeds(0));
      expect(Array.from(empty.logits!.data as Float32Array).every(Number.isNaN)).toBe(true);
    } finally {
      await session.release();
    }
  });
});
