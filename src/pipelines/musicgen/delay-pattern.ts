/**
 * MusicGen's delay pattern, as transformers' `MusicgenForCausalLM.build_delay_pattern_mask`
 * builds it for generation from the single decoder-start column: codebook k is delayed by k
 * steps (in stereo models the codebooks of the two channels are interleaved, and codebooks
 * 2k and 2k + 1 share delay k). With C codebooks per channel and max_length = 1 +
 * max_new_tokens, row k's position t is the pad token if t ≤ delay(k) or
 * t ≥ max_length − C + 1 + delay(k), and free (a generated token) otherwise, so every row has
 * max_length − C free positions: the frames.
 *
 * Built here rather than with Optimum's traced `build_delay_pattern_mask.onnx`, whose input
 * length is fixed at trace time.
 */
export class DelayPattern {
  /** Codebooks per channel (C). */
  readonly channelCodebooks: number;
  readonly maxLength: number;
  readonly frames: number;

  constructor(
    /** Codebooks the decoder predicts per step (all channels). */
    readonly codebooks: number,
    readonly channels: number,
    maxNewTokens: number,
  ) {
    this.channelCodebooks = codebooks / channels;
    this.maxLength = maxNewTokens + 1;
    this.frames = this.maxLength - this.channelCodebooks;
  }

  /** The fewest decoder steps that make at least one frame with the mask applied (transformers skips the mask below 2C − 1 positions). */
  static minNewTokens(codebooks: number, channels: number): number {
    const c = codebooks / channels;
    return Math.max(c, 2 * c - 2);
  }

  delay(codebook: number): number {
    return this.channels === 2 ? codebook >> 1 : codebook;
  }

  /** Whether row `codebook` holds a generated token at `position` (else the pad token). */
  isFree(codebook: number, position: number): boolean {
    const d = this.delay(codebook);
    return position > d && position < this.maxLength - this.channelCodebooks + 1 + d;
  }

  /** Frames complete (every codebook generated) once the sequence is `length` long. */
  framesDone(length: number): number {
    return Math.min(this.frames, Math.max(0, length - this.channelCodebooks));
  }

  /**
   * The codes [codebooks][frames] of a finished delayed sequence ([codebooks × maxLength],
   * row-major): row k's frame j is at position delay(k) + 1 + j.
   */
  undo(sequence: Int32Array): number[][] {
    return Array.from({ length: this.codebooks }, (_, k) => {
      const start = k * this.maxLength + this.delay(k) + 1;
      return Array.from(sequence.subarray(start, start + this.frames));
    });
  }
}
