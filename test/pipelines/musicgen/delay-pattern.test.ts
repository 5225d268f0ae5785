import { describe, expect, it } from 'vitest';
import { DelayPattern } from '../../../src/pipelines/musicgen/delay-pattern.js';

const picture = (p: DelayPattern) =>
  Array.from({ length: p.codebooks }, (_, k) => Array.from({ length: p.maxLength }, (_, t) => (p.isFree(k, t) ? '-1' : 'P')).join(' '));

describe("MusicGen's delay pattern", () => {
  it("is transformers' mask for 4 codebooks and max length 8 (build_delay_pattern_mask's docstring)", () => {
    const p = new DelayPattern(4, 1, 7);
    expect(picture(p)).toEqual(['P -1 -1 -1 -1 P P P', 'P P -1 -1 -1 -1 P P', 'P P P -1 -1 -1 -1 P', 'P P P P -1 -1 -1 -1']);
    expect(p.frames).toBe(4);
  });

  it('delays the two channels of a stereo model together: codebooks 2k and 2k + 1 by k', () => {
    const p = new DelayPattern(8, 2, 7);
    expect(picture(p)).toEqual([
      'P -1 -1 -1 -1 P P P',
      'P -1 -1 -1 -1 P P P',
      'P P -1 -1 -1 -1 P P',
      'P P -1 -1 -1 -1 P P',
      'P P P -1 -1 -1 -1 P',
      'P P P -1 -1 -1 -1 P',
      'P P P P -1 -1 -1 -1',
      'P P P P -1 -1 -1 -1',
    ]);
    expect([p.channelCodebooks, p.frames]).toEqual([4, 4]);
  });

  it('makes max_new_tokens − codebooks + 1 frames, and counts a frame done once its last codebook is generated', () => {
    const p = new DelayPattern(4, 1, 28);
    expect(p.frames).toBe(25);
    expect([1, 4, 5, 6, 29, 40].map((length) => p.framesDone(length))).toEqual([0, 0, 1, 2, 25, 25]);
  });

  it('undoes the pattern: row k of frame j is at position k + 1 + j', () => {
    const p = new DelayPattern(4, 1, 7);
    const sequence = new Int32Array(4 * 8).map((_, i) => i);
    expect(p.undo(sequence)).toEqual([
      [1, 2, 3, 4],
      [10, 11, 12, 13],
      [19, 20, 21, 22],
      [28, 29, 30, 31],
    ]);
  });

  it('needs enough steps for transformers to apply the mask (max_length ≥ 2C − 1) and for one frame', () => {
    expect(DelayPattern.minNewTokens(4, 1)).toBe(6);
    expect(DelayPattern.minNewTokens(8, 2)).toBe(6);
    expect(DelayPattern.minNewTokens(2, 1)).toBe(2);
  });
});
