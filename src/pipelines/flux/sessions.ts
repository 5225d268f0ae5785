import type * as ort from 'onnxruntime-node';
import { KilnError } from '../../errors.js';
import { openGraph } from '../onnx/graph-session.js';
import { createSessionOptions } from '../onnx/session-options.js';
import type { LoadOptions } from '../pipeline.js';
import { type Port, portsOf } from '../onnx/tensor-io.js';
import type { FluxFolder } from './model-folder.js';

/**
 * The ONNX sessions of a FLUX.1 model (the text encoders only where the folder has them), with
 * each input the pipeline feeds as its session declares it: element type (fp32 or fp16 exports)
 * and shape (`img_ids` 2-D in current exports, 3-D with a batch axis in older ones; batch axes
 * free or fixed).
 */
export interface FluxSessions {
  clip: { session: ort.InferenceSession; inputIds: Port; pooled: string } | null;
  t5: { session: ort.InferenceSession; inputIds: Port; hiddenStates: string } | null;
  transformer: {
    session: ort.InferenceSession;
    hiddenStates: Port;
    encoderHiddenStates: Port;
    pooledProjections: Port;
    timestep: Port;
    imgIds: Port;
    txtIds: Port;
    guidance: Port | null;
    output: string;
    /** The batch the graph fixes, or null where it is free. */
    batch: number | null;
  };
  vae: { session: ort.InferenceSession; latent: Port; image: string; batch: number | null };
  release(): Promise<void>;
}

const fixed = (dim: number | string | undefined) => (typeof dim === 'number' && dim > 0 ? dim : null);

export async function openFluxSessions(folder: FluxFolder, options: LoadOptions): Promise<FluxSessions> {
  const graphs = Object.values(folder.graphs).filter((g): g is string => g !== null);
  const stray = options.graphPatches?.find((p) => !graphs.includes(p.file));
  if (stray) throw new KilnError('BAD_USER_INPUT', `the graph patch is for ${stray.file}, which this model does not have (its transformer is ${folder.graphs.transformer})`);
  const opened: ort.InferenceSession[] = [];
  const open = async (rel: string) => {
    const session = await openGraph(folder.dir, rel, options, createSessionOptions(options));
    opened.push(session);
    return session;
  };
  try {
    const { io } = folder;
    // One at a time: with a device provider, each graph's weights pass through host memory in turn.
    const clipSession = folder.graphs.clip && io.clip ? await open(folder.graphs.clip) : null;
    const t5Session = folder.graphs.t5 && io.t5 ? await open(folder.graphs.t5) : null;
    const transformer = await open(folder.graphs.transformer);
    const vae = await open(folder.graphs.vaeDecoder);
    const port = (session: ort.InferenceSession, name: string): Port => {
      const p = portsOf(session.inputMetadata).get(name);
      if (!p) throw new Error(`the session has no tensor input ${name}`);
      return p;
    };
    const t = io.transformer;
    const hiddenStates = port(transformer, t.hiddenStates);
    const latent = port(vae, io.vae.latent);
    return {
      clip: clipSession && io.clip ? { session: clipSession, inputIds: port(clipSession, io.clip.inputIds), pooled: io.clip.pooled } : null,
      t5: t5Session && io.t5 ? { session: t5Session, inputIds: port(t5Session, io.t5.inputIds), hiddenStates: io.t5.hiddenStates } : null,
      transformer: {
        session: transformer,
        hiddenStates,
        encoderHiddenStates: port(transformer, t.encoderHiddenStates),
        pooledProjections: port(transformer, t.pooledProjections),
        timestep: port(transformer, t.timestep),
        imgIds: port(transformer, t.imgIds),
        txtIds: port(transformer, t.txtIds),
        guidance: t.guidance ? port(transformer, t.guidance) : null,
        output: t.output,
        batch: fixed(hiddenStates.shape[0]),
      },
      vae: { session: vae, latent, image: io.vae.image, batch: fixed(latent.shape[0]) },
      release: () => Promise.all(opened.map((s) => s.release())).then(() => undefined),
    };
  } catch (err) {
    await Promise.all(opened.map((s) => s.release()));
    throw err;
  }
}
