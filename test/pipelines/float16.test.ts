import { describe, expect, it } from 'vitest';
import { bfloat16BitsToFloat, floatToHalfBits, fromHalfArray, halfBitsToFloat, toHalfArray } from '../../src/pipelines/onnx/float16.js';

describe('float16 conversion', () => {
  it('encodes exactly representable values exactly and rounds others to the nearest half, ties to even', () => {
    expect([1, -2, 0.5, 65504, 2 ** -24, 0].map(floatToHalfBits)).toEqual([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x0000]);
    expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // halfway between 1 and the next half: to even
    expect(floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(floatToHalfBits(65520)).toBe(0x7c00); // rounds past the largest half: infinity
    expect(floatToHalfBits(2 ** -26)).toBe(0x0000);
    expect(floatToHalfBits(Number.NaN) & 0x7c00).toBe(0x7c00);
  });

  it('decodes normals, subnormals, infinities and NaN', () => {
    expect([0x3c00, 0xc000, 0x0001, 0x7bff, 0xfc00].map(halfBitsToFloat)).toEqual([1, -2, 2 ** -24, 65504, -Infinity]);
    expect(halfBitsToFloat(0x7e00)).toBeNaN();
  });

  it('round-trips arrays within half precision', () => {
    const values = Float32Array.from([0.1, -3.14159, 14.6146, 1e-3, 1000.5]);
    const back = fromHalfArray(toHalfArray(values));
    values.forEach((v, i) => expect(Math.abs(back[i]! - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11));
  });

  it('turns every half into a float32 and back to the same bits', () => {
    const wrong: string[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (!isNaN && floatToHalfBits(halfBitsToFloat(h)) !== h) wrong.push(`0x${h.toString(16)}`);
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
    for (const [value, bits] of cases) expect(floatToHalfBits(value), String(value)).toBe(bits);
    expect(halfBitsToFloat(floatToHalfBits(NaN))).toBeNaN();
  });

  it('reads bfloat16 as the top half of a float32', () => {
    expect([0x3f80, 0xc040, 0x0000, 0x7f80].map(bfloat16BitsToFloat)).toEqual([1, -3, 0, Infinity]);
  });
});
