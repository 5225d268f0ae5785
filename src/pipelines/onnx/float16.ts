/**
 * IEEE half precision to and from float32, for graphs whose inputs and outputs are float16.
 * onnxruntime-node hands float16 tensors over as the raw 16-bit patterns in a Uint16Array (or
 * as a Float16Array where the runtime has one), so Kiln converts whole arrays at the boundary
 * and keeps its own arithmetic in float32.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Rounds to the nearest half, ties to even (as a hardware conversion does); overflow gives infinity. */
export function floatToHalfBits(value: number): number {
  f32[0] = value;
  return halfOfFloatBits(u32[0]!);
}

/** The half nearest to the float32 whose bit pattern is `x`. */
function halfOfFloatBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x47800000) return sign | (abs > 0x7f800000 ? 0x7e00 : 0x7c00); // ≥ 65536 (after rounding: infinity), or NaN
  if (abs >= 0x38800000) {
    // Normal halves: rebias the exponent and round the 13 dropped bits to nearest, ties to even,
    // by adding 0xfff plus the lowest kept bit; a carry rolls into the exponent, as it should.
    return sign | ((abs - 0x38000000 + 0xfff + ((abs >>> 13) & 1)) >>> 13);
  }
  if (abs < 0x33000000) return sign; // below half the smallest subnormal: zero
  const exp = abs >>> 23;
  const mant = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exp;
  const half = mant >>> shift;
  const rest = mant & ((1 << shift) - 1);
  const mid = 1 << (shift - 1);
  return sign | (rest > mid || (rest === mid && half & 1) ? half + 1 : half);
}

// Every half decodes through one table lookup: 64K floats (256 KiB) built on first use.
let table: Float32Array | undefined;

function halfTable(): Float32Array {
  if (table) return table;
  table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) table[h] = sign * frac * 2 ** -24;
    else if (exp === 31) table[h] = frac ? NaN : sign * Infinity;
    else table[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return table;
}

export function halfBitsToFloat(bits: number): number {
  return halfTable()[bits & 0xffff]!;
}

export function toHalfArray(values: ArrayLike<number>): Uint16Array {
  // Reads the float32 bit patterns in place: a pipeline converts latents at every step.
  const floats = values instanceof Float32Array ? values : Float32Array.from(values);
  const bits = new Uint32Array(floats.buffer, floats.byteOffset, floats.length);
  const out = new Uint16Array(floats.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfOfFloatBits(bits[i]!);
  return out;
}

export function fromHalfArray(bits: Uint16Array): Float32Array {
  const t = halfTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!;
  return out;
}

/** bfloat16 (the top half of a float32) to float32. */
export function bfloat16BitsToFloat(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}
