import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AudioGenerateRequest, AudioStepReport } from '../../../src/pipelines/audio-pipeline.js';
import { loadMusicgenPipeline, type MusicgenPipeline } from '../../../src/pipelines/musicgen/pipeline.js';
import { hasMusicgenReference, MUSICGEN_MODEL, readMusicgenReference, referenceFloats, referenceTitle, snrDb } from '../../support/musicgen-reference.js';

/**
 * Kiln's musicgen-onnx pipeline against what transformers' MusicgenForConditionalGeneration
 * computes with the same model (musicgen-tiny and its reference; see musicgen.README.md).
 */
const hooks = (onStep: (r: AudioStepReport) => void = () => {}) => ({ signal: new AbortController().signal, onStep });
const sampled = (prompt: string, seed: number): AudioGenerateRequest => ({ prompt, maxNewTokens: 28, guidanceScale: 3, seed, topK: 250, temperature: 1 });

describe.skipIf(!hasMusicgenReference)(referenceTitle("musicgen-onnx against transformers' reference for musicgen-tiny"), () => {
  let pipeline: MusicgenPipeline;
  beforeAll(async () => {
    pipeline = await loadMusicgenPipeline(MUSICGEN_MODEL, { executionProviders: ['cpu'], intraOpThreads: 1 });
  });
  afterAll(() => pipeline?.release());

  it("gives transformers' token ids for every prompt, </s> last", () => {
    for (const p of readMusicgenReference().tokenizer.prompts) expect(pipeline.tokenizer.encode(p.text), JSON.stringify(p.text)).toEqual(p.input_ids);
  });

  it('makes identical greedy codes and delayed sequences, and the waveform at SNR ≥ 40 dB, in every case', async () => {
    for (const c of readMusicgenReference().greedy) {
      const result = await pipeline.generateWithDetails(
        { prompt: c.prompt, maxNewTokens: c.max_new_tokens, guidanceScale: c.guidance_scale, seed: 0, topK: 250, temperature: 0 },
        hooks(),
        () => {},
      );
      const [output] = result.outputs;
      expect(result.inputIds, c.name).toEqual(c.input_ids);
      expect(output!.codes, c.name).toEqual(c.codes);
      expect(result.delayedSequences[0], c.name).toEqual(c.delayed_sequence);
      expect([output!.sampleRate, output!.channels, output!.samples.length], c.name).toEqual([32000, 1, c.num_samples]);
      expect(snrDb(referenceFloats(c.audio_f32), output!.samples), c.name).toBeGreaterThanOrEqual(40);
    }
  });

  it("has transformers' raw logits (both guidance halves) and guided scores over the first three steps, to 1e-5", async () => {
    const c = readMusicgenReference().greedy[0]!;
    const [K, V] = [4, 128];
    const expected = referenceFloats('case0.step_logits.f32'); // [3 steps, (cond, uncond, scores), K, V]
    const seen: Float32Array[][] = [];
    await pipeline.generateWithDetails({ prompt: c.prompt, maxNewTokens: c.max_new_tokens, guidanceScale: c.guidance_scale, seed: 0, topK: 250, temperature: 0 }, hooks(), (step, logits, scores) => {
      if (step < 3) seen.push([logits.slice(0, K * V), logits.slice(K * V, 2 * K * V), scores.slice(0, K * V)]);
    });
    let worst = 0;
    for (let step = 0; step < 3; step++) {
      for (let part = 0; part < 3; part++) {
        const reference = expected.subarray((step * 3 + part) * K * V, (step * 3 + part + 1) * K * V);
        for (let i = 0; i < K * V; i++) worst = Math.max(worst, Math.abs(seen[step]![part]![i]! - reference[i]!));
      }
    }
    expect(worst).toBeLessThan(1e-5);
    expect(worst).toBeLessThan(c.min_top1_top2_margin / 10);
  });

  it('runs guidance 1 with no unconditional half: the decoder sees one row per codebook', async () => {
    const c = readMusicgenReference().greedy[1]!;
    expect(c.guidance_scale).toBe(1);
    const rows: number[] = [];
    await pipeline.generateWithDetails({ prompt: c.prompt, maxNewTokens: 8, guidanceScale: 1, seed: 0, topK: 0, temperature: 0 }, hooks(), (_, logits) => rows.push(logits.length / 128));
    expect(new Set(rows)).toEqual(new Set([4]));
  });

  it('samples the same codes and waveform for the same seed, and different codes for another seed', async () => {
    const a = await pipeline.generate(sampled('lofi hip hop beat', 7), hooks());
    const b = await pipeline.generate(sampled('lofi hip hop beat', 7), hooks());
    const c = await pipeline.generate(sampled('lofi hip hop beat', 8), hooks());
    expect(b.outputs[0]!.codes).toEqual(a.outputs[0]!.codes);
    expect(Buffer.from(b.outputs[0]!.samples.buffer).equals(Buffer.from(a.outputs[0]!.samples.buffer))).toBe(true);
    expect(c.outputs[0]!.codes).not.toEqual(a.outputs[0]!.codes);
    expect(a.outputs[0]!.seed).toBe(7);
  });

  it('samples differently from greedy, and temperature 0 is greedy whatever the seed and top-k', async () => {
    const c = readMusicgenReference().greedy[0]!;
    const greedy = await pipeline.generate({ prompt: c.prompt, maxNewTokens: c.max_new_tokens, guidanceScale: c.guidance_scale, seed: 12345, topK: 3, temperature: 0 }, hooks());
    expect(greedy.outputs[0]!.codes).toEqual(c.codes);
    const sampledCodes = (await pipeline.generate({ ...sampled(c.prompt, 1) }, hooks())).outputs[0]!.codes;
    expect(sampledCodes).not.toEqual(c.codes);
  });

  it('with top-k 1 samples the greedy codes (only the best token is left to draw)', async () => {
    const c = readMusicgenReference().greedy[2]!;
    const result = await pipeline.generate({ prompt: c.prompt, maxNewTokens: c.max_new_tokens, guidanceScale: c.guidance_scale, seed: 99, topK: 1, temperature: 1.5 }, hooks());
    expect(result.outputs[0]!.codes).toEqual(c.codes);
  });

  it('makes a batch whose output i is what seed + i makes alone (the KV cache holds both guidance halves of every output)', async () => {
    const batch = await pipeline.generate({ ...sampled('90s rock song', 20), numOutputs: 2 }, hooks());
    const alone = await pipeline.generate(sampled('90s rock song', 21), hooks());
    expect(batch.outputs.map((o) => o.seed)).toEqual([20, 21]);
    expect(batch.outputs[1]!.codes).toEqual(alone.outputs[0]!.codes);
    expect(snrDb(alone.outputs[0]!.samples, batch.outputs[1]!.samples)).toBeGreaterThan(100);
    expect(batch.outputs[0]!.codes).not.toEqual(batch.outputs[1]!.codes);
  });

  it('makes round(duration × 50) frames for a duration, reporting every decoder step with the frames done', async () => {
    const reports: AudioStepReport[] = [];
    const result = await pipeline.generate({ prompt: 'a calm piano melody', durationSeconds: 0.5, guidanceScale: 3, seed: 1, topK: 250, temperature: 1 }, hooks((r) => reports.push(r)));
    expect(result.decoderSteps).toBe(25 + 3);
    expect(result.outputs[0]!.codes.map((row) => row.length)).toEqual([25, 25, 25, 25]);
    expect(result.outputs[0]!.samples.length).toBe(0.5 * 32000);
    expect(reports.map((r) => r.index)).toEqual([0, 0, 0, ...Array.from({ length: 25 }, (_, i) => i + 1)]);
    expect(new Set(reports.map((r) => r.count))).toEqual(new Set([25]));
  });

  it('stops before the next decoder step once cancelled, with the signal’s reason, and generates normally afterwards', async () => {
    const controller = new AbortController();
    let steps = 0;
    const run = pipeline.generate(sampled('cancel me', 3), {
      signal: controller.signal,
      onStep: () => {
        steps++;
        if (steps === 10) controller.abort(new Error('cancelled by the test'));
      },
    });
    await expect(run).rejects.toThrow('cancelled by the test');
    expect(steps).toBe(10);

    // Aborted from outside while a step runs: at most that step completes.
    const outside = new AbortController();
    let stepsAfter = 0;
    let aborted = false;
    const late = pipeline.generate({ ...sampled('cancel me', 3), maxNewTokens: 400 }, {
      signal: outside.signal,
      onStep: ({ index }) => {
        if (aborted) stepsAfter++;
        if (index === 5) setImmediate(() => ((aborted = true), outside.abort(new Error('stop'))));
      },
    });
    await expect(late).rejects.toThrow('stop');
    expect(stepsAfter).toBeLessThanOrEqual(1);

    const after = await pipeline.generate(sampled('lofi hip hop beat', 7), hooks());
    expect(after.outputs[0]!.codes[0]!.length).toBe(25);
  });

  it('refuses decoder steps too few for the frames EnCodec decodes (4: its first convolution reflect-pads by 3), or past the position table', async () => {
    await expect(pipeline.generate({ ...sampled('x', 1), maxNewTokens: 6 }, hooks())).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(pipeline.generate({ ...sampled('x', 1), maxNewTokens: 2048 }, hooks())).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(pipeline.generate({ ...sampled('x', 1), topK: -1 }, hooks())).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    const fewest = await pipeline.generate({ ...sampled('x', 1), maxNewTokens: 7 }, hooks());
    expect(fewest.outputs[0]!.codes[0]!.length).toBe(4);
  });
});
