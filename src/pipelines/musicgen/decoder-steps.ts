import * as ort from 'onnxruntime-node';
import { floatValues, type Port, tensorFor } from '../onnx/tensor-io.js';
import type { DecoderGraph, MusicgenSessions, PastPort } from './sessions.js';

/**
 * One generation's run of the decoder, one token per codebook per step, with its KV cache. The
 * cache is sized by the total batch (both guidance halves), not by batch × codebooks: the
 * decoder sums the codebooks' embeddings into one position. The first step starts from empty
 * past tensors (the merged graph's no-cache branch) and returns the whole cache; later steps
 * feed the self-attention cache back and keep re-feeding the first step's cross-attention
 * cache, since the cache branch returns only empty placeholders for it. `release` drops
 * every cached tensor (on the device too, where they live there).
 */
export class DecoderSteps {
  private readonly selfCache = new Map<string, ort.Tensor>();
  private readonly crossCache = new Map<string, ort.Tensor>();
  private readonly masks = new Map<string, ort.Tensor>();
  private steps = 0;

  constructor(
    private readonly sessions: MusicgenSessions,
    /** Rows of the encoder states (the batch, twice it under guidance). */
    private readonly totalBatch: number,
    /** The decoder's rows per step: totalBatch × codebooks. */
    private readonly rows: number,
    /** [totalBatch, tokens, width] in the type the decoder takes. */
    private readonly encoderStates: ort.Tensor,
    /** [totalBatch, tokens], 1 for the conditional half's tokens and 0 for the unconditional half. */
    private readonly encoderMask: Int32Array,
  ) {}

  /** Runs one step on the last token of every row ([rows] ids) and returns the logits, [rows × vocab]. */
  async step(ids: BigInt64Array): Promise<Float32Array> {
    const first = this.steps === 0;
    const graph = first ? this.sessions.first : this.sessions.withPast;
    const feeds: Record<string, ort.Tensor> = {
      [graph.inputIds.name]: graph.inputIds.type === 'int64' ? new ort.Tensor('int64', ids, [this.rows, 1]) : tensorFor(graph.inputIds, Array.from(ids, Number), [this.rows, 1]),
      [graph.encoderHiddenStates.name]: this.encoderStates,
    };
    if (graph.encoderAttentionMask) feeds[graph.encoderAttentionMask.name] = this.maskFor(graph.encoderAttentionMask);
    if (graph.useCacheBranch) feeds[graph.useCacheBranch.name] = new ort.Tensor('bool', Uint8Array.of(first ? 0 : 1), [1]);
    for (const p of graph.past) feeds[p.name] = first ? this.emptyPast(p) : this.cached(p);

    const out = await graph.session.run(feeds);
    this.steps++;
    const logits = await floatValues(out[graph.logits]!);
    this.keep(graph, out, first);
    return logits;
  }

  release(): void {
    for (const t of [...this.selfCache.values(), ...this.crossCache.values()]) t.dispose();
    this.selfCache.clear();
    this.crossCache.clear();
  }

  private maskFor(port: Port): ort.Tensor {
    let tensor = this.masks.get(port.type);
    if (!tensor) {
      tensor = tensorFor(port, this.encoderMask, [this.totalBatch, this.encoderMask.length / this.totalBatch]);
      this.masks.set(port.type, tensor);
    }
    return tensor;
  }

  private emptyPast(p: PastPort): ort.Tensor {
    const dims = [this.totalBatch, this.sessions.cache.heads, 0, this.sessions.cache.headDim];
    return p.type === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), dims) : tensorFor(p, [], dims);
  }

  private cached(p: PastPort): ort.Tensor {
    const cache = p.attention === 'decoder' ? this.selfCache : this.crossCache;
    const tensor = cache.get(p.present);
    if (!tensor) throw new Error(`the decoder's cache has no ${p.present}`);
    return tensor;
  }

  /** Keeps this step's self-attention cache (dropping the last), and the cross-attention cache of the first step only. */
  private keep(graph: DecoderGraph, out: ort.InferenceSession.OnnxValueMapType, first: boolean) {
    for (const [name, value] of Object.entries(out)) {
      if (name === graph.logits || !name.startsWith('present.')) {
        value.dispose();
        continue;
      }
      const cross = name.includes('.encoder.');
      if (cross && !first) {
        value.dispose(); // an empty placeholder
        continue;
      }
      const cache = cross ? this.crossCache : this.selfCache;
      cache.get(name)?.dispose();
      cache.set(name, value);
    }
  }
}
