/**
 * What the two trainer stand-ins (ai-toolkit-standin.mjs, sd-scripts-standin.mjs) share: the
 * safetensors writer, SD 1.5's LoRA modules with their real shapes and kohya names, tqdm's
 * progress lines, the loss they report, and the options tests give them. Plain JavaScript, so
 * that they start as fast as the real tools' Python would not, and depend on no Kiln code.
 *
 * Stand-in options (any argument starting with --standin-, the rest is the real tool's):
 *   --standin-step-ms=N       time per training step (default 20)
 *   --standin-crash-at=N      raise an exception before training step N (0-based), as a crash mid-way
 *   --standin-ignore-sigint   keep training through SIGINT (only SIGKILL stops it)
 *   --standin-keys=te         also save text-encoder modules (lora_te_…), a wrong layout
 *   --standin-exit-code=N     exit with N after writing everything
 *   --standin-child           start a child process in the group, as accelerate and
 *                             dataloader workers do (its pid in standin-child.pid)
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { writeFileSync } from 'node:fs';

export function standinOptions(argv) {
  const opts = { stepMs: 20, crashAt: null, ignoreSigint: false, keys: 'unet', exitCode: 0, child: false };
  const rest = [];
  for (const arg of argv) {
    const m = /^--standin-([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) {
      rest.push(arg);
      continue;
    }
    if (m[1] === 'step-ms') opts.stepMs = Number(m[2]);
    else if (m[1] === 'crash-at') opts.crashAt = Number(m[2]);
    else if (m[1] === 'ignore-sigint') opts.ignoreSigint = true;
    else if (m[1] === 'keys') opts.keys = m[2];
    else if (m[1] === 'exit-code') opts.exitCode = Number(m[2]);
    else if (m[1] === 'child') opts.child = true;
  }
  return { opts, rest };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The loss of (0-based) step s: falling, with a wobble, never twice the same. */
export const lossAt = (s) => 0.08 + 0.12 * Math.exp(-s / 8) + 0.004 * Math.sin(1.7 * s);

/** As the real tools' workers: a process in the same group that does nothing until killed; its pid goes to `standin-child.pid` in the working folder. */
export function startChild() {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  writeFileSync('standin-child.pid', String(child.pid));
}

/** tqdm's default bar: `{desc}: {pct:3.0f}%|{bar}| {n}/{total} [{elapsed}<{remaining}, {rate}{, postfix}]`. */
export function tqdmLine(desc, n, total, elapsedS, postfix) {
  const frac = total ? n / total : 0;
  const width = 10;
  const full = Math.floor(frac * width);
  const partial = ' ▏▎▍▌▋▊▉'[Math.floor((frac * width - full) * 8)] ?? '';
  const bar = ('█'.repeat(full) + (full < width ? partial : '')).padEnd(width, ' ').slice(0, width);
  const fmt = (s) => {
    const t = Math.round(s);
    const h = Math.floor(t / 3600);
    const mm = String(Math.floor((t % 3600) / 60)).padStart(2, '0');
    const ss = String(t % 60).padStart(2, '0');
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  };
  const rate = n && elapsedS ? n / elapsedS : null;
  const remaining = rate ? fmt((total - n) / rate) : '?';
  const rateText = rate === null ? '?it/s' : rate >= 1 ? `${rate.toFixed(2)}it/s` : `${(1 / rate).toFixed(2)}s/it`;
  return `${desc}: ${String(Math.round(frac * 100)).padStart(3)}%|${bar}| ${n}/${total} [${fmt(elapsedS)}<${remaining}, ${rateText}${postfix ? `, ${postfix}` : ''}]`;
}

/** Python's `f"{v:.{digits}e}"`: the exponent has at least two digits. */
export const pythonExp = (v, digits) => v.toExponential(digits).replace(/e([+-])(\d)$/, 'e$10$2');

/** tqdm redraws its line in place: `\r` before each refresh, no newline until it closes. */
export const drawBar = (line) => process.stderr.write(`\r${line}`);

/** SD 1.5's 16 Transformer2DModel blocks and the 12 modules of each that kohya-style LoRAs train, with [out, in] and whether a 1×1 conv. */
export function sd15LoraModules() {
  const blocks = [
    ['down_blocks_0_attentions_0', 320], ['down_blocks_0_attentions_1', 320],
    ['down_blocks_1_attentions_0', 640], ['down_blocks_1_attentions_1', 640],
    ['down_blocks_2_attentions_0', 1280], ['down_blocks_2_attentions_1', 1280],
    ['mid_block_attentions_0', 1280],
    ['up_blocks_1_attentions_0', 1280], ['up_blocks_1_attentions_1', 1280], ['up_blocks_1_attentions_2', 1280],
    ['up_blocks_2_attentions_0', 640], ['up_blocks_2_attentions_1', 640], ['up_blocks_2_attentions_2', 640],
    ['up_blocks_3_attentions_0', 320], ['up_blocks_3_attentions_1', 320], ['up_blocks_3_attentions_2', 320],
  ];
  const modules = [];
  for (const [block, c] of blocks) {
    const t = `${block}_transformer_blocks_0`;
    modules.push(
      { name: `${block}_proj_in`, out: c, in: c, conv: true },
      { name: `${t}_attn1_to_q`, out: c, in: c }, { name: `${t}_attn1_to_k`, out: c, in: c },
      { name: `${t}_attn1_to_v`, out: c, in: c }, { name: `${t}_attn1_to_out_0`, out: c, in: c },
      { name: `${t}_attn2_to_q`, out: c, in: c }, { name: `${t}_attn2_to_k`, out: c, in: 768 },
      { name: `${t}_attn2_to_v`, out: c, in: 768 }, { name: `${t}_attn2_to_out_0`, out: c, in: c },
      { name: `${t}_ff_net_0_proj`, out: 8 * c, in: c }, { name: `${t}_ff_net_2`, out: c, in: 4 * c },
      { name: `${block}_proj_out`, out: c, in: c, conv: true },
    );
  }
  return modules.map((m) => ({ ...m, prefix: 'lora_unet' }));
}

/** CLIP ViT-L's first layer's attention, as a LoRA that also trained the text encoder would hold. */
export const textEncoderModules = () =>
  ['q_proj', 'k_proj', 'v_proj', 'out_proj'].map((p) => ({ name: `text_model_encoder_layers_0_self_attn_${p}`, out: 768, in: 768, prefix: 'lora_te' }));

/** kohya-layout tensors (`<prefix>_<module>.lora_down.weight`, `.lora_up.weight`, `.alpha`) with small random values. */
export function loraTensors(modules, rank, alpha, seed) {
  let x = seed >>> 0 || 1;
  const values = (n) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.02;
    return out;
  };
  const tensors = [];
  for (const m of modules) {
    const k = m.conv ? [1, 1] : [];
    const key = `${m.prefix}_${m.name}`;
    tensors.push({ name: `${key}.lora_down.weight`, dtype: 'F16', shape: [rank, m.in, ...k], data: values(rank * m.in) });
    tensors.push({ name: `${key}.lora_up.weight`, dtype: 'F16', shape: [m.out, rank, ...k], data: values(m.out * rank) });
    tensors.push({ name: `${key}.alpha`, dtype: 'F16', shape: [], data: Float32Array.of(alpha) });
  }
  return tensors;
}

/** A safetensors file as the Python library writes one: header JSON (metadata first) padded to 8 bytes, then the data. */
export function safetensorsBytes(tensors, metadata) {
  const sizes = { F16: 2, F32: 4 };
  const header = { __metadata__: metadata };
  let offset = 0;
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const t of sorted) {
    const n = t.data.length * sizes[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.from(json);
  const out = Buffer.alloc(8 + head.length + offset);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  let pos = 8 + head.length;
  for (const t of sorted) {
    const bytes = t.dtype === 'F32' ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) : new Uint8Array(halves(t.data).buffer);
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}

/** The metadata's `sshs_model_hash`: sha256 of the file's data section. */
export const dataHash = (bytes) => crypto.createHash('sha256').update(bytes.subarray(8 + Number(bytes.readBigUInt64LE(0)))).digest('hex');

/** float32 → IEEE half bits, truncating the mantissa (little-endian machines). */
function halves(values) {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const exp = ((x >>> 23) & 0xff) - 127 + 15;
    const mant = x & 0x7fffff;
    out[i] = exp <= 0 ? (exp < -10 ? sign : sign | ((mant | 0x800000) >> (14 - exp))) : exp >= 31 ? sign | 0x7c00 : sign | (exp << 10) | (mant >> 13);
  }
  return out;
}

/** What Python prints for an exception nobody caught. */
export function pythonTraceback(file, line, call, error) {
  process.stderr.write(`\nTraceback (most recent call last):\n  File "${file}", line ${line}, in <module>\n    ${call}\n${error}\n`);
}
