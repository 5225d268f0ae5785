import { describe, expect, it } from 'vitest';
import { bfloat16ToFloat, floatToHalf, halfToFloat } from '../../src/models/float16.js';

describe('16-bit floats', () => {
  it('turns every half into a float32 and back to the same bits', () => {
    const wrong: string[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (!isNaN && floatToHalf(halfToFloat(h)) !== h) wrong.push(`0x${h.toString(16)}`);
    }
    expect(wrong).toEqual([]);
  });

  it('rounds float32 to the nearest half, ties to even, overflowing to infinity', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [-0, 0x8000],
      [65504, 0x7bff],
      [65520, 0x7c00],
      [1e9, 0x7c00],
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000],
      [3 * 2 ** -25, 0x0002],
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02],
      [2 ** -14 - 2 ** -25, 0x0400],
    ];
    for (const [value, bits] of cases) expect(floatToHalf(value), String(value)).toBe(bits);
    expect(halfToFloat(floatToHalf(NaN))).toBeNaN();
  });

  it('reads bfloat16 as the top half of a float32', () => {
    expect([0x3f80, 0xc040, 0x0000, 0x7f80].map(bfloat16ToFloat)).toEqual([1, -3, 0, Infinity]);
  });
});
