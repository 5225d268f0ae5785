/**
 * The VAE's output, [3, H, W] in [−1, 1], as diffusers' image processor turns it into a
 * picture: x / 2 + 0.5 clamped to [0, 1], channels last; 8-bit by rounding x · 255.
 */
export function toUnitRgb(chw: Float32Array, height: number, width: number): Float32Array {
  const plane = height * width;
  const out = new Float32Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let p = 0, o = c; p < plane; p++, o += 3) {
      const v = chw[c * plane + p]! / 2 + 0.5;
      out[o] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
  return out;
}

/** numpy's `(x * 255).round()` on float32: halves round to even. */
export function toRgb8(unit: Float32Array): Uint8Array {
  const out = new Uint8Array(unit.length);
  for (let i = 0; i < unit.length; i++) {
    const v = Math.fround(unit[i]! * 255);
    const r = Math.round(v); // halves up: step back from odd ones
    out[i] = r - v === 0.5 && r & 1 ? r - 1 : r;
  }
  return out;
}
