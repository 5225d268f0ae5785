import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { createSessionOptions } from '../onnx/session-options.js';
import type { LoadOptions } from '../pipeline.js';
import { type Port, portsOf } from '../onnx/tensor-io.js';
import { type MusicgenFolder, MusicgenFolderError } from './model-folder.js';

/** One `past_key_values.{layer}.{decoder|encoder}.{key|value}` input and the output that feeds it. */
export interface PastPort extends Port {
  /** The `present.*` output of the same layer, attention and projection. */
  present: string;
  attention: 'decoder' | 'encoder';
}

/** The decoder graph run at one kind of step (the merged graph serves both). */
export interface DecoderGraph {
  session: ort.InferenceSession;
  inputIds: Port;
  encoderHiddenStates: Port;
  encoderAttentionMask: Port | null;
  /** Present on merged graphs: false on the first step, true after. */
  useCacheBranch: Port | null;
  past: PastPort[];
  logits: string;
}

/**
 * The ONNX sessions of a MusicGen model and what their graphs declare: which input is which,
 * in what element type (fp32 and fp16 exports differ at their boundaries), and the shape of
 * the KV cache (layers, heads, head width).
 */
export interface MusicgenSessions {
  textEncoder: { session: ort.InferenceSession; inputIds: Port; attentionMask: Port | null; hiddenStates: string };
  /** The first step's graph (no cache yet) and the later steps' (the same object for a merged decoder). */
  first: DecoderGraph;
  withPast: DecoderGraph;
  encodec: { session: ort.InferenceSession; audioCodes: Port; audioValues: string };
  /** Heads and head width of every past_key_values tensor ([batch, heads, length, headDim]). */
  cache: { heads: number; headDim: number };
  /** Bytes of the graph files and their external weights. */
  sizeBytes: number;
  release(): Promise<void>;
}

const PAST = /^past_key_values\.(\d+)\.(decoder|encoder)\.(key|value)$/;
const fixed = (dim: number | string | undefined) => (typeof dim === 'number' && dim > 0 ? dim : null);

export async function openMusicgenSessions(folder: MusicgenFolder, options: LoadOptions): Promise<MusicgenSessions> {
  const sessionOptions = createSessionOptions(options);
  const opened: ort.InferenceSession[] = [];
  // Opened by path, so that onnxruntime finds external weight files beside the graph.
  const open = async (rel: string) => {
    const session = await ort.InferenceSession.create(path.join(folder.dir, rel), sessionOptions);
    opened.push(session);
    return session;
  };
  try {
    const textEncoder = await open(folder.graphs.textEncoder);
    const decoderGraphs = folder.graphs.decoder;
    const first = await open('merged' in decoderGraphs ? decoderGraphs.merged : decoderGraphs.first);
    const withPast = 'merged' in decoderGraphs ? first : await open(decoderGraphs.withPast);
    const encodec = await open(folder.graphs.encodecDecode);
    const described = describe(folder, textEncoder, first, withPast, encodec);
    const sizes = await Promise.all(folder.files.filter((f) => /\.onnx(_data|\.data)?$/.test(f)).map(async (f) => (await fs.stat(path.join(folder.dir, f))).size));
    return {
      ...described,
      sizeBytes: sizes.reduce((a, b) => a + b, 0),
      async release() {
        await Promise.all(opened.map((s) => s.release()));
      },
    };
  } catch (err) {
    await Promise.all(opened.map((s) => s.release()));
    throw err;
  }
}

/** Finds each input and output the pipeline needs, refusing graphs that lack one or want more. */
function describe(folder: MusicgenFolder, textEncoder: ort.InferenceSession, first: ort.InferenceSession, withPast: ort.InferenceSession, encodec: ort.InferenceSession) {
  const problems: string[] = [];
  const { graphs } = folder;
  const firstFile = 'merged' in graphs.decoder ? graphs.decoder.merged : graphs.decoder.first;
  const withPastFile = 'merged' in graphs.decoder ? graphs.decoder.merged : graphs.decoder.withPast;
  const required = (session: ort.InferenceSession, graph: string, name: string): Port => {
    const port = portsOf(session.inputMetadata).get(name);
    if (!port) problems.push(`${graph} has no input ${name} (it has ${session.inputNames.join(', ')})`);
    return port ?? { name, type: 'float32', shape: [] };
  };
  const optional = (session: ort.InferenceSession, name: string) => portsOf(session.inputMetadata).get(name) ?? null;
  const output = (session: ort.InferenceSession, graph: string, preferred: string) => {
    if (session.outputNames.includes(preferred)) return preferred;
    if (session.outputNames.length !== 1) problems.push(`${graph} has no output ${preferred}`);
    return session.outputNames[0]!;
  };

  const decoderGraph = (session: ort.InferenceSession, graph: string, needsPast: boolean): DecoderGraph => {
    const ports = portsOf(session.inputMetadata);
    const past: PastPort[] = [];
    for (const port of ports.values()) {
      const m = PAST.exec(port.name);
      if (!m) continue;
      const present = `present.${m[1]}.${m[2]}.${m[3]}`;
      if (m[2] === 'decoder' && !session.outputNames.includes(present)) problems.push(`${graph} takes ${port.name} but has no output ${present}`);
      past.push({ ...port, present, attention: m[2] as 'decoder' | 'encoder' });
    }
    if (needsPast && !past.some((p) => p.attention === 'decoder')) problems.push(`${graph} takes no past_key_values inputs, so it cannot continue from a cache`);
    const known = new Set(['input_ids', 'encoder_hidden_states', 'encoder_attention_mask', 'use_cache_branch', ...past.map((p) => p.name)]);
    const extra = session.inputNames.filter((n) => !known.has(n));
    if (extra.length) problems.push(`${graph} takes inputs this pipeline does not provide: ${extra.join(', ')}`);
    return {
      session,
      inputIds: required(session, graph, 'input_ids'),
      encoderHiddenStates: required(session, graph, 'encoder_hidden_states'),
      encoderAttentionMask: optional(session, 'encoder_attention_mask'),
      useCacheBranch: optional(session, 'use_cache_branch'),
      past,
      logits: output(session, graph, 'logits'),
    };
  };

  const firstGraph = decoderGraph(first, firstFile, false);
  const withPastGraph = first === withPast ? firstGraph : decoderGraph(withPast, withPastFile, true);
  if (first === withPast && !firstGraph.useCacheBranch) problems.push(`${firstFile} has no use_cache_branch input, so it is not a merged decoder`);
  if (first !== withPast) {
    // The first graph makes the whole cache, the later one must take all of it back.
    const made = new Set(first.outputNames);
    for (const p of withPastGraph.past) if (!made.has(p.present)) problems.push(`${withPastFile} takes ${p.name}, which ${firstFile} does not make (${p.present})`);
  }

  const someKv = withPastGraph.past.find((p) => p.attention === 'decoder');
  const heads = fixed(someKv?.shape[1]) ?? folder.decoderHeads;
  const headDim = fixed(someKv?.shape[3]) ?? folder.decoderHeadDim;

  const hiddenStates = output(textEncoder, graphs.textEncoder, 'last_hidden_state');
  const made = textEncoder.outputMetadata.find((m) => m.name === hiddenStates);
  const madeWidth = fixed(made?.isTensor ? made.shape[2] : undefined);
  const takenWidth = fixed(firstGraph.encoderHiddenStates.shape[2]);
  if (madeWidth !== null && takenWidth !== null && madeWidth !== takenWidth) {
    problems.push(`${graphs.textEncoder} makes hidden states ${madeWidth} wide, but ${firstFile} takes ${takenWidth}`);
  }
  const audioCodes = required(encodec, graphs.encodecDecode, 'audio_codes');
  const perChannel = folder.codebooks / folder.channels;
  if (fixed(audioCodes.shape[2]) !== null && fixed(audioCodes.shape[2]) !== perChannel) {
    problems.push(`${graphs.encodecDecode} decodes ${audioCodes.shape[2]} codebooks, but the decoder makes ${perChannel} per channel`);
  }
  const textEncoderIo = {
    session: textEncoder,
    inputIds: required(textEncoder, graphs.textEncoder, 'input_ids'),
    attentionMask: optional(textEncoder, 'attention_mask'),
    hiddenStates,
  };
  const encodecIo = { session: encodec, audioCodes, audioValues: output(encodec, graphs.encodecDecode, 'audio_values') };
  if (problems.length) throw new MusicgenFolderError(problems);
  return { textEncoder: textEncoderIo, first: firstGraph, withPast: withPastGraph, encodec: encodecIo, cache: { heads, headDim } };
}
