import fs from 'node:fs/promises';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { upcastFloat16Model } from '../onnx/float16-upcast.js';
import { openGraph } from '../onnx/graph-session.js';
import { createSessionOptions } from '../onnx/session-options.js';
import type { LoadOptions } from '../pipeline.js';
import { type Port, portsOf } from '../onnx/tensor-io.js';
import { type StableDiffusionXLFolder, StableDiffusionXLFolderError } from './model-folder.js';

/**
 * The ONNX sessions of an SDXL model and what their graphs declare. Each text encoder gives the
 * hidden states of its penultimate layer (diffusers' `hidden_states[-2]`: Optimum's output
 * `hidden_states.{N−1}` of `hidden_states.0` … `hidden_states.N`); the second also gives the
 * pooled, projected `text_embeds`.
 */
export interface StableDiffusionXLSessions {
  textEncoders: [TextEncoderGraph, TextEncoderGraph] | null;
  unet: ort.InferenceSession;
  vaeDecoder: ort.InferenceSession;
  io: {
    sample: Port;
    timestep: Port;
    encoderHiddenStates: Port;
    textEmbeds: Port;
    timeIds: Port;
    /** LCM-distilled UNets take guidance as an embedding instead of a second batch half. */
    timestepCond: Port | null;
    noisePred: string;
    latentSample: Port;
    image: string;
  };
  /** A graph's fixed batch size, or null where the batch is free. */
  batch: { unet: number | null; vaeDecoder: number | null };
  /** The latent height and width a static-shape UNet takes, or null where they are free. */
  latentSize: [number, number] | null;
  /** Whether the VAE decoder's float16 graph was upcast to float32 (its config's force_upcast). */
  vaeUpcast: boolean;
  /** Bytes of the graph files and their external weights. */
  sizeBytes: number;
  release(): Promise<void>;
}

export interface TextEncoderGraph {
  session: ort.InferenceSession;
  inputIds: Port;
  /** The penultimate layer's hidden states output, [batch, 77, width]. */
  hiddenStates: string;
  /** Width of those hidden states, where the graph fixes it. */
  width: number | null;
  /** The pooled output diffusers uses (`text_embeds`, the second encoder's), or null. */
  pooled: string | null;
  batch: number | null;
}

const fixed = (dim: number | string | undefined) => (typeof dim === 'number' && dim > 0 ? dim : null);
const UNET_INPUTS = ['sample', 'timestep', 'encoder_hidden_states', 'text_embeds', 'time_ids', 'timestep_cond'];
const TIME_IDS = 6;

export async function openSessions(folder: StableDiffusionXLFolder, options: LoadOptions): Promise<StableDiffusionXLSessions> {
  const sessionOptions = createSessionOptions(options);
  const opened: ort.InferenceSession[] = [];
  let vaeUpcast = false;
  const open = async (rel: string, rewrite?: (bytes: Uint8Array) => Uint8Array | null) => {
    const session = await openGraph(folder.dir, rel, options, sessionOptions, rewrite);
    opened.push(session);
    return session;
  };
  const upcast = (bytes: Uint8Array) => {
    const result = upcastFloat16Model(bytes, path.dirname(path.join(folder.dir, folder.graphs.vaeDecoder)));
    vaeUpcast = result.changed;
    return result.changed ? result.bytes : null;
  };
  try {
    const encoders = folder.textEncoders ? await Promise.all(folder.textEncoders.graphs.map((g) => open(g))) : null;
    const unet = await open(folder.graphs.unet);
    const vaeDecoder = await open(folder.graphs.vaeDecoder, folder.vae.forceUpcast ? upcast : undefined);
    const described = describe(folder, encoders, unet, vaeDecoder);
    return {
      ...described,
      vaeUpcast,
      sizeBytes: await graphBytes(folder),
      release: async () => {
        await Promise.all(opened.map((s) => s.release()));
      },
    };
  } catch (err) {
    await Promise.all(opened.map((s) => s.release()));
    throw err;
  }
}

/** Finds each input and output the pipeline needs, refusing graphs that lack one or disagree on a width. */
function describe(folder: StableDiffusionXLFolder, encoders: ort.InferenceSession[] | null, unet: ort.InferenceSession, vaeDecoder: ort.InferenceSession) {
  const problems: string[] = [];
  const input = (session: ort.InferenceSession, graph: string, name: string): Port => {
    const port = portsOf(session.inputMetadata).get(name);
    if (!port) problems.push(`${graph} has no input ${name} (it has ${session.inputNames.join(', ')})`);
    return port ?? { name, type: 'float32', shape: [] };
  };
  const output = (session: ort.InferenceSession, preferred: string) => (session.outputNames.includes(preferred) ? preferred : session.outputNames[0]!);
  const { unet: unetGraph, vaeDecoder: vaeGraph } = folder.graphs;

  const sample = input(unet, unetGraph, 'sample');
  const timestep = input(unet, unetGraph, 'timestep');
  const encoderHiddenStates = input(unet, unetGraph, 'encoder_hidden_states');
  const textEmbeds = input(unet, unetGraph, 'text_embeds');
  const timeIds = input(unet, unetGraph, 'time_ids');
  const timestepCond = portsOf(unet.inputMetadata).get('timestep_cond') ?? null;
  const extra = unet.inputNames.filter((n) => !UNET_INPUTS.includes(n));
  if (extra.length) problems.push(`${unetGraph} takes inputs this pipeline does not provide: ${extra.join(', ')}`);
  if (fixed(sample.shape[1]) !== null && fixed(sample.shape[1]) !== 4) problems.push(`${unetGraph} takes ${sample.shape[1]} latent channels, not 4`);
  const timeIdWidth = fixed(timeIds.shape[1]);
  if (timeIdWidth !== null && timeIdWidth !== TIME_IDS) {
    problems.push(`${unetGraph} takes ${timeIdWidth} time ids, not SDXL's ${TIME_IDS} (original size, crop, target size)`);
  }
  const latentSample = input(vaeDecoder, vaeGraph, 'latent_sample');

  let textEncoders: [TextEncoderGraph, TextEncoderGraph] | null = null;
  if (encoders && folder.textEncoders) {
    const [first, second] = encoders.map((session, i) => describeTextEncoder(session, folder.textEncoders!.graphs[i]!, i === 1, problems));
    textEncoders = [first!, second!];
    const taken = fixed(encoderHiddenStates.shape[2]);
    if (first!.width !== null && second!.width !== null && taken !== null && first!.width + second!.width !== taken) {
      problems.push(`the text encoders' hidden states are ${first!.width} + ${second!.width} wide, but ${unetGraph} takes ${taken}`);
    }
    const pooled = second!.pooled ? second!.session.outputMetadata.find((m) => m.name === second!.pooled) : undefined;
    const [made, wanted] = [fixed(pooled?.isTensor ? pooled.shape[1] : undefined), fixed(textEmbeds.shape[1])];
    if (made !== null && wanted !== null && made !== wanted) problems.push(`${folder.textEncoders.graphs[1]} pools prompts into ${made} values, but ${unetGraph} takes ${wanted}`);
  }
  if (problems.length) throw new StableDiffusionXLFolderError(problems);

  const [h, w] = [fixed(sample.shape[2]), fixed(sample.shape[3])];
  return {
    textEncoders,
    unet,
    vaeDecoder,
    io: { sample, timestep, encoderHiddenStates, textEmbeds, timeIds, timestepCond, noisePred: output(unet, 'out_sample'), latentSample, image: output(vaeDecoder, 'sample') },
    batch: { unet: fixed(sample.shape[0]), vaeDecoder: fixed(latentSample.shape[0]) },
    latentSize: h !== null && w !== null ? ([h, w] as [number, number]) : null,
  };
}

function describeTextEncoder(session: ort.InferenceSession, graph: string, pooledWanted: boolean, problems: string[]): TextEncoderGraph {
  const inputIds = portsOf(session.inputMetadata).get('input_ids');
  if (!inputIds) problems.push(`${graph} has no input input_ids (it has ${session.inputNames.join(', ')})`);
  const layers = session.outputNames.map((n) => /^hidden_states\.(\d+)$/.exec(n)).filter((m) => m !== null).map((m) => Number(m[1]));
  const last = layers.length ? Math.max(...layers) : -1;
  const hiddenStates = `hidden_states.${last - 1}`;
  if (last < 1 || !session.outputNames.includes(hiddenStates)) {
    problems.push(`${graph} gives no penultimate hidden states (outputs hidden_states.0 … hidden_states.N, as Optimum exports SDXL's text encoders with output_hidden_states); it has ${session.outputNames.join(', ')}`);
  }
  const pooled = pooledWanted ? (session.outputNames.includes('text_embeds') ? 'text_embeds' : null) : null;
  if (pooledWanted && !pooled) problems.push(`${graph} has no text_embeds output (the pooled, projected prompt embedding); it has ${session.outputNames.join(', ')}`);
  const meta = session.outputMetadata.find((m) => m.name === hiddenStates);
  return {
    session,
    inputIds: inputIds ?? { name: 'input_ids', type: 'int64', shape: [] },
    hiddenStates,
    width: fixed(meta?.isTensor ? meta.shape[2] : undefined),
    pooled,
    batch: fixed(inputIds?.shape[0]),
  };
}

async function graphBytes(folder: StableDiffusionXLFolder): Promise<number> {
  const weights = folder.files.filter((f) => /^(text_encoder|text_encoder_2|unet|vae_decoder)\//.test(f));
  const sizes = await Promise.all(weights.map(async (f) => (await fs.stat(path.join(folder.dir, f))).size));
  return sizes.reduce((a, b) => a + b, 0);
}
