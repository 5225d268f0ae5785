import * as ort from 'onnxruntime-node';
import type { AudioGenerateHooks, AudioGenerateRequest, AudioGenerateResult, AudioLoadOptions, LoadedAudioPipeline } from '../audio-pipeline.js';
import { checkAudioRequest, refuseAudio } from '../audio-request.js';
import { seedFor } from '../pipeline.js';
import { SeededRandom } from '../random.js';
import { floatValues, type Port, tensorFor } from '../onnx/tensor-io.js';
import { TokenSampler } from '../token-sampling.js';
import { DecoderSteps } from './decoder-steps.js';
import { DelayPattern } from './delay-pattern.js';
import { decodeCodes } from './encodec-decode.js';
import { inspectMusicgenFolder, type MusicgenFolder } from './model-folder.js';
import { type MusicgenSessions, openMusicgenSessions } from './sessions.js';
import { loadT5Tokenizer, type T5Tokenizer } from './t5-tokenizer.js';

/**
 * MusicGen (text to music) from ONNX graphs, as transformers'
 * `MusicgenForConditionalGeneration.generate` runs it: the prompt → T5 tokens (`</s>` last) →
 * text encoder; under classifier-free guidance (guidance > 1) a doubled batch whose second half
 * has all-zero encoder states and mask; the delay pattern (delay-pattern.ts) over
 * max_new_tokens decoder steps from the decoder-start column, each step one token per codebook
 * from `uncond + g·(cond − uncond)`, greedy or top-k / temperature sampling; the pattern
 * undone; EnCodec decoding to a waveform at the codec's rate.
 *
 * Sampling draws from Kiln's generator: output i's tokens use SeededRandom(seed + i, stream 0),
 * one uniform per codebook per step in codebook order, so a seed means the same music on a
 * given machine, and output i is the same whether made alone or in a batch.
 */
export interface MusicgenPipeline extends LoadedAudioPipeline {
  readonly folder: MusicgenFolder;
  /** The pipeline's own sessions, for benchmarks that time them bare. */
  readonly sessions: MusicgenSessions;
  readonly tokenizer: T5Tokenizer;
  /** As `generate`, also showing each step's logits to `inspect` (reference checks). */
  generateWithDetails(request: AudioGenerateRequest, hooks: AudioGenerateHooks, inspect: StepInspector): Promise<AudioGenerateResult & MusicgenDetails>;
}

/** Sees each decoder step's raw logits ([rows × vocab]: conditional rows first) and the scores tokens were chosen from ([outputs × codebooks × vocab]). */
export type StepInspector = (step: number, logits: Float32Array, scores: Float32Array) => void;

export interface MusicgenDetails {
  /** Token ids of the prompt, `</s>` included. */
  inputIds: number[];
  /** Per output, the whole delayed sequence ([codebooks][max_length], pad where masked), as transformers' generate returns it. */
  delayedSequences: number[][][];
}

// Room for activations and onnxruntime's arenas beside the weights, for the session cache's budget.
const MEMORY_PER_WEIGHT_BYTE = 1.5;
const SAMPLING_STREAM = 0;

export async function loadMusicgenPipeline(dir: string, options: AudioLoadOptions): Promise<MusicgenPipeline> {
  const folder = await inspectMusicgenFolder(dir, { variant: options.variant });
  const tokenizer = await loadT5Tokenizer(folder.tokenizerJson);
  const sessions = await openMusicgenSessions(folder, options);
  const generateWithDetails = (request: AudioGenerateRequest, hooks: AudioGenerateHooks, inspect: StepInspector) => generate(folder, tokenizer, sessions, request, hooks, inspect);
  return {
    folder,
    sessions,
    tokenizer,
    sizeBytes: Math.round(sessions.sizeBytes * MEMORY_PER_WEIGHT_BYTE),
    generateWithDetails,
    async generate(request, hooks) {
      const { inputIds: _ids, delayedSequences: _sequences, ...result } = await generateWithDetails(request, hooks, () => {});
      return result;
    },
    release: () => sessions.release(),
  };
}

/** The decoder steps a request asks for: max_new_tokens as given, or enough for its duration's frames. */
export function newTokensFor(folder: MusicgenFolder, req: Pick<AudioGenerateRequest, 'durationSeconds' | 'maxNewTokens'>): number {
  const perChannel = folder.codebooks / folder.channels;
  const least = Math.max(DelayPattern.minNewTokens(folder.codebooks, folder.channels), folder.minFrames + perChannel - 1);
  const most = folder.maxPositions - 1;
  let tokens: number;
  if (req.maxNewTokens !== undefined) tokens = req.maxNewTokens;
  else tokens = Math.round((req.durationSeconds ?? folder.defaults.durationSeconds) * folder.frameRate) + perChannel - 1;
  if (tokens < least) throw refuseAudio(`this model needs at least ${least} decoder steps (${least - perChannel + 1} frames)`);
  if (tokens > most) throw refuseAudio(`this model makes at most ${most} decoder steps (${((most - perChannel + 1) / folder.frameRate).toFixed(1)} s)`);
  return tokens;
}

async function generate(
  folder: MusicgenFolder,
  tokenizer: T5Tokenizer,
  sessions: MusicgenSessions,
  req: AudioGenerateRequest,
  hooks: AudioGenerateHooks,
  inspect: StepInspector,
): Promise<AudioGenerateResult & MusicgenDetails> {
  const t0 = performance.now();
  const n = checkAudioRequest(req);
  const maxNewTokens = newTokensFor(folder, req);
  const guided = req.guidanceScale > 1;
  const total = guided ? 2 * n : n;
  const K = folder.codebooks;
  const V = folder.vocabSize;

  hooks.signal.throwIfAborted();
  const inputIds = tokenizer.encode(req.prompt);
  const encoderStates = await encodePrompt(sessions, inputIds, n, guided);
  const mask = new Int32Array(total * inputIds.length);
  mask.fill(1, 0, n * inputIds.length);
  const t1 = performance.now();

  const pattern = new DelayPattern(K, folder.channels, maxNewTokens);
  const L = pattern.maxLength;
  const sequence = new Int32Array(n * K * L);
  const seeds = Array.from({ length: n }, (_, i) => seedFor(req.seed, i));
  const randoms = seeds.map((seed) => new SeededRandom(seed, SAMPLING_STREAM));
  const sampler = new TokenSampler(V, { temperature: req.temperature, topK: req.topK });
  const ids = new BigInt64Array(total * K);
  const scores = guided ? new Float32Array(n * K * V) : null;
  const start = BigInt(folder.decoderStartTokenId);
  const decoder = new DecoderSteps(sessions, total, total * K, encoderStates, mask);
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      hooks.signal.throwIfAborted();
      for (let b = 0; b < n; b++) {
        for (let k = 0; k < K; k++) {
          const id = pattern.isFree(k, step) ? BigInt(sequence[(b * K + k) * L + step]!) : start;
          ids[b * K + k] = id;
          if (guided) ids[(n + b) * K + k] = id;
        }
      }
      const logits = await decoder.step(ids);
      const chosen = scores ? guide(logits, n * K * V, req.guidanceScale, scores) : logits;
      inspect(step, logits, chosen);
      for (let b = 0; b < n; b++) {
        for (let k = 0; k < K; k++) sequence[(b * K + k) * L + step + 1] = sampler.next(chosen, (b * K + k) * V, randoms[b]!);
      }
      hooks.onStep({ index: pattern.framesDone(step + 2), count: pattern.frames });
    }
  } finally {
    decoder.release();
    encoderStates.dispose();
  }
  hooks.signal.throwIfAborted();

  const delayedSequences = seeds.map((_, b) =>
    Array.from({ length: K }, (_, k) => Array.from(sequence.subarray((b * K + k) * L, (b * K + k + 1) * L), (id, t) => (pattern.isFree(k, t) ? id : folder.padTokenId))),
  );
  const codes = seeds.map((_, b) => pattern.undo(sequence.subarray(b * K * L, (b + 1) * K * L)));
  const audio = await decodeCodes(sessions, codes, folder.channels);
  const t2 = performance.now();
  return {
    outputs: audio.map((samples, b) => ({ samples, sampleRate: folder.sampleRate, channels: folder.channels, seed: seeds[b]!, codes: codes[b]! })),
    encodeMs: t1 - t0,
    generateMs: t2 - t1,
    decoderSteps: maxNewTokens,
    inputIds,
    delayedSequences,
  };
}

/**
 * transformers' ClassifierFreeGuidanceLogitsProcessor: the first half of the rows is
 * conditional, the second unconditional; scores = uncond + (cond − uncond)·g, in float32.
 */
function guide(logits: Float32Array, half: number, g: number, out: Float32Array): Float32Array {
  for (let i = 0; i < half; i++) {
    const cond = logits[i]!;
    const uncond = logits[half + i]!;
    out[i] = uncond + Math.fround(Math.fround(cond - uncond) * g);
  }
  return out;
}

/**
 * The prompt's hidden states for every decoder row: the text encoder's output repeated for
 * each output, then as many all-zero rows for the unconditional half under guidance, in the
 * element type the decoder takes.
 */
async function encodePrompt(sessions: MusicgenSessions, inputIds: number[], n: number, guided: boolean): Promise<ort.Tensor> {
  const { session, inputIds: idsPort, attentionMask, hiddenStates } = sessions.textEncoder;
  const feeds: Record<string, ort.Tensor> = { [idsPort.name]: tensorFor(idsPort, inputIds, [1, inputIds.length]) };
  if (attentionMask) feeds[attentionMask.name] = tensorFor(attentionMask, new Array<number>(inputIds.length).fill(1), [1, inputIds.length]);
  const out = await session.run(feeds);
  const states = out[hiddenStates]!;
  const [, tokens, width] = states.dims as number[];
  const rows = guided ? 2 * n : n;
  const port: Port = sessions.first.encoderHiddenStates;
  const perRow = tokens! * width!;
  let tensor: ort.Tensor;
  if (port.type === 'float16' && states.type === 'float16' && states.data instanceof Uint16Array) {
    const data = new Uint16Array(rows * perRow);
    for (let b = 0; b < n; b++) data.set(states.data, b * perRow);
    tensor = new ort.Tensor('float16', data, [rows, tokens!, width!]);
  } else {
    const values = await floatValues(states);
    const data = new Float32Array(rows * perRow);
    for (let b = 0; b < n; b++) data.set(values, b * perRow);
    tensor = tensorFor(port, data, [rows, tokens!, width!]);
  }
  for (const value of Object.values(out)) value.dispose();
  return tensor;
}
