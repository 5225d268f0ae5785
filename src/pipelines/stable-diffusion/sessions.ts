import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { openGraph } from '../onnx/graph-session.js';
import { createSessionOptions } from '../onnx/session-options.js';
import type { LoadOptions } from '../pipeline.js';
import { CLIP_MAX_LENGTH } from '../clip-tokenizer.js';
import { type StableDiffusionFolder, StableDiffusionFolderError } from './model-folder.js';
import { type Port, portsOf } from '../onnx/tensor-io.js';

/**
 * The three ONNX sessions of a Stable Diffusion model and what their graphs declare: which
 * input is which, in what types, and which sizes are fixed (static-shape exports, such as
 * ONNX Runtime's web builds, take one batch size or one image size only).
 */
export interface StableDiffusionSessions {
  textEncoder: ort.InferenceSession;
  unet: ort.InferenceSession;
  vaeDecoder: ort.InferenceSession;
  io: {
    inputIds: Port;
    hiddenStates: string;
    sample: Port;
    timestep: Port;
    encoderHiddenStates: Port;
    /** LCM-distilled UNets take guidance as an embedding instead of a second batch half. */
    timestepCond: Port | null;
    noisePred: string;
    latentSample: Port;
    image: string;
  };
  /** A graph's fixed batch size, or null where the batch is free. */
  batch: { textEncoder: number | null; unet: number | null; vaeDecoder: number | null };
  /** The latent height and width a static-shape UNet takes, or null where they are free. */
  latentSize: [number, number] | null;
  /** Bytes of the graph files and their external weights. */
  sizeBytes: number;
  release(): Promise<void>;
}

const fixed = (dim: number | string | undefined) => (typeof dim === 'number' && dim > 0 ? dim : null);

export async function openSessions(folder: StableDiffusionFolder, options: LoadOptions): Promise<StableDiffusionSessions> {
  const base = createSessionOptions(options);
  const webgpu = options.executionProviders.includes('webgpu');
  const opened: ort.InferenceSession[] = [];
  const open = async (rel: string, extra: ort.InferenceSession.SessionOptions = {}) => {
    const session = await openGraph(folder.dir, rel, options, { ...base, ...extra });
    opened.push(session);
    return session;
  };
  try {
    // On WebGPU the prompt's hidden states stay on the device, where the UNet reads them at every
    // step (the UNet's own output comes back to the CPU: the scheduler steps there). All of the
    // encoder's outputs, since their names differ between exports; the others are disposed unread.
    const textEncoder = await open(folder.graphs.textEncoder, webgpu ? { preferredOutputLocation: 'gpu-buffer' } : {});
    const unet = await open(folder.graphs.unet);
    const vaeDecoder = await open(folder.graphs.vaeDecoder);
    const sessions = describe(folder, textEncoder, unet, vaeDecoder);
    return {
      ...sessions,
      sizeBytes: await graphBytes(folder),
      async release() {
        await Promise.all([textEncoder.release(), unet.release(), vaeDecoder.release()]);
      },
    };
  } catch (err) {
    await Promise.all(opened.map((s) => s.release()));
    throw err;
  }
}

/** Finds each input and output the pipeline needs, refusing graphs that lack one. */
function describe(folder: StableDiffusionFolder, textEncoder: ort.InferenceSession, unet: ort.InferenceSession, vaeDecoder: ort.InferenceSession) {
  const problems: string[] = [];
  const input = (session: ort.InferenceSession, graph: string, name: string): Port => {
    const port = portsOf(session.inputMetadata).get(name);
    if (!port) problems.push(`${graph} has no input ${name} (it has ${session.inputNames.join(', ')})`);
    return port ?? { name, type: 'float32', shape: [] };
  };
  const output = (session: ort.InferenceSession, preferred: string) => (session.outputNames.includes(preferred) ? preferred : session.outputNames[0]!);

  const inputIds = input(textEncoder, folder.graphs.textEncoder, 'input_ids');
  const sample = input(unet, folder.graphs.unet, 'sample');
  const timestep = input(unet, folder.graphs.unet, 'timestep');
  const encoderHiddenStates = input(unet, folder.graphs.unet, 'encoder_hidden_states');
  const latentSample = input(vaeDecoder, folder.graphs.vaeDecoder, 'latent_sample');
  const timestepCond = portsOf(unet.inputMetadata).get('timestep_cond') ?? null;
  const extra = unet.inputNames.filter((n) => !['sample', 'timestep', 'encoder_hidden_states', 'timestep_cond'].includes(n));
  if (extra.length) problems.push(`${folder.graphs.unet} takes inputs this pipeline does not provide: ${extra.join(', ')}`);
  const sequence = fixed(inputIds.shape[1]);
  if (sequence !== null && sequence !== CLIP_MAX_LENGTH) problems.push(`${folder.graphs.textEncoder} takes ${sequence} tokens, not ${CLIP_MAX_LENGTH}`);
  if (fixed(sample.shape[1]) !== null && fixed(sample.shape[1]) !== 4) problems.push(`${folder.graphs.unet} takes ${sample.shape[1]} latent channels, not 4`);
  const hiddenStates = output(textEncoder, 'last_hidden_state');
  const stateWidth = textEncoder.outputMetadata.find((m) => m.name === hiddenStates);
  const [made, taken] = [fixed(stateWidth?.isTensor ? stateWidth.shape[2] : undefined), fixed(encoderHiddenStates.shape[2])];
  if (made !== null && taken !== null && made !== taken) problems.push(`${folder.graphs.textEncoder} makes hidden states ${made} wide, but ${folder.graphs.unet} takes ${taken}`);
  if (problems.length) throw new StableDiffusionFolderError(problems);

  const [h, w] = [fixed(sample.shape[2]), fixed(sample.shape[3])];
  return {
    textEncoder,
    unet,
    vaeDecoder,
    io: {
      inputIds,
      hiddenStates,
      sample,
      timestep,
      encoderHiddenStates,
      timestepCond,
      noisePred: output(unet, 'out_sample'),
      latentSample,
      image: output(vaeDecoder, 'sample'),
    },
    batch: { textEncoder: fixed(inputIds.shape[0]), unet: fixed(sample.shape[0]), vaeDecoder: fixed(latentSample.shape[0]) },
    latentSize: h !== null && w !== null ? ([h, w] as [number, number]) : null,
  };
}

async function graphBytes(folder: StableDiffusionFolder): Promise<number> {
  const weights = folder.files.filter((f) => /^(text_encoder|unet|vae_decoder)\//.test(f));
  const sizes = await Promise.all(weights.map(async (f) => (await fs.stat(path.join(folder.dir, f))).size));
  return sizes.reduce((a, b) => a + b, 0);
}
