import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/pipelines/random.js';
import { argmax, TokenSampler } from '../../src/pipelines/token-sampling.js';

const scores = Float32Array.of(0.5, 2, -1, 1.9, 0, 2);

function histogram(sampler: TokenSampler, seed: number, draws: number): number[] {
  const counts = new Array<number>(scores.length).fill(0);
  const random = new SeededRandom(seed);
  for (let i = 0; i < draws; i++) counts[sampler.next(scores, 0, random)]!++;
  return counts;
}

describe('token sampling', () => {
  it('is greedy at temperature 0: the first of the largest scores, drawing nothing', () => {
    const random = new SeededRandom(1);
    const before = new SeededRandom(1).nextUint32();
    expect(new TokenSampler(6, { temperature: 0, topK: 2 }).next(scores, 0, random)).toBe(1);
    expect(random.nextUint32()).toBe(before);
    expect(argmax(Float32Array.of(9, 1, 2, 3), 1, 3)).toBe(2);
  });

  it('draws only among the top k (ties at the k-th score stay in), in proportion to exp(score / T)', () => {
    const top2 = histogram(new TokenSampler(6, { temperature: 1, topK: 2 }), 5, 20000);
    expect(top2[0]! + top2[2]! + top2[3]! + top2[4]!).toBe(0); // 2 and 2 tie for first: 1.9 is third
    expect(Math.abs(top2[1]! - top2[5]!) / 20000).toBeLessThan(0.02);
    const all = histogram(new TokenSampler(6, { temperature: 1, topK: 0 }), 5, 20000);
    const expected = Array.from(scores, (s) => Math.exp(s));
    const total = expected.reduce((a, b) => a + b, 0);
    all.forEach((count, v) => expect(Math.abs(count / 20000 - expected[v]! / total)).toBeLessThan(0.015));
  });

  it('sharpens as the temperature falls and flattens as it rises', () => {
    const cold = histogram(new TokenSampler(6, { temperature: 0.01, topK: 0 }), 9, 2000);
    expect(cold[1]! + cold[5]!).toBeGreaterThan(1990);
    const hot = histogram(new TokenSampler(6, { temperature: 50, topK: 0 }), 9, 6000);
    for (const count of hot) expect(count).toBeGreaterThan(800);
  });

  it('gives the same draws for the same seed and other draws for another', () => {
    const sampler = new TokenSampler(6, { temperature: 1, topK: 0 });
    const draw = (seed: number) => {
      const random = new SeededRandom(seed);
      return Array.from({ length: 50 }, () => sampler.next(scores, 0, random));
    };
    expect(draw(3)).toEqual(draw(3));
    expect(draw(3)).not.toEqual(draw(4));
  });
});
