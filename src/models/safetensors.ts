import fs from 'node:fs/promises';
import { bfloat16BitsToFloat, floatToHalfBits, halfBitsToFloat } from '../pipelines/onnx/float16.js';
import { ModelFileError, quoteName } from './model-file-error.js';

/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length N, N bytes of UTF-8 JSON, then the data section. Each tensor's `data_offsets`
 * are relative to the data section, and the tensors together cover it exactly.
 */

/** Bytes per element of each dtype Kiln accepts. */
export const SAFETENSORS_DTYPES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  U16: 2,
  I16: 2,
  F16: 2,
  BF16: 2,
  U32: 4,
  I32: 4,
  F32: 4,
  U64: 8,
  I64: 8,
  F64: 8,
} as const;
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;

/** The same bound as the reference implementation: a header is metadata, never weights. */
export const MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorsTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte range in the file: [begin, end). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  fileLength: number;
  /** Where the data section starts: 8 + header length. */
  dataStart: number;
  metadata: Record<string, string>;
  /** In the header's order. */
  tensors: SafetensorsTensor[];
}

const refuse = (problem: string) => new ModelFileError(`Not a valid safetensors file: ${problem}.`);

/** Validates the header of the file at `file` by reading only its first 8 + N bytes. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    // The length and the header's first byte, which tells a safetensors file from any other.
    const prefix = Buffer.alloc(9);
    const { bytesRead } = await handle.read(prefix, 0, 9, 0);
    const headerLength = checkHeaderLength(prefix.subarray(0, bytesRead), size);
    const header = Buffer.alloc(headerLength);
    const read = await handle.read(header, 0, headerLength, 8);
    if (read.bytesRead !== headerLength) throw refuse('the file ended while its header was read');
    return parseHeader(header, size);
  } finally {
    await handle.close();
  }
}

/** Validates a whole safetensors file held in memory. */
export function parseSafetensors(bytes: Uint8Array): SafetensorsHeader {
  const headerLength = checkHeaderLength(bytes.subarray(0, 9), bytes.length);
  return parseHeader(bytes.subarray(8, 8 + headerLength), bytes.length);
}

/** `prefix`: the file's first 9 bytes (fewer when it is shorter). */
function checkHeaderLength(prefix: Uint8Array, fileLength: number): number {
  if (prefix.length < 8) throw refuse(`it has ${fileLength} bytes, fewer than the 8 of its header length`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  // Text or any other file read as a length gives an absurd one; a header always opens with `{`.
  const implausible = n > BigInt(MAX_SAFETENSORS_HEADER_BYTES) || n > BigInt(fileLength - 8);
  if (implausible && prefix[8] !== 0x7b) {
    throw refuse('it is not a safetensors file at all (it does not begin with a header length and a JSON header)');
  }
  if (n > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) throw refuse(`its header length ${n} is over the limit of ${MAX_SAFETENSORS_HEADER_BYTES} bytes`);
  if (n > BigInt(fileLength - 8)) throw refuse(`its header length ${n} runs past the end of the ${fileLength}-byte file`);
  if (n < 2n) throw refuse(`its header length ${n} is too short for a JSON object`);
  return Number(n);
}

function parseHeader(raw: Uint8Array, fileLength: number): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw refuse('its header is not UTF-8 text');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw refuse('its header is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw refuse('its header is not a JSON object');

  const dataStart = 8 + raw.length;
  const dataLength = fileLength - dataStart;
  let metadata: Record<string, string> = {};
  const tensors: SafetensorsTensor[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = checkMetadata(entry);
      continue;
    }
    tensors.push(checkTensor(name, entry, dataStart, dataLength));
  }

  // Sorted by position, each tensor must start where the previous one ended and the last must
  // end where the file does: no overlaps, holes or trailing bytes.
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = dataStart;
  let previous: SafetensorsTensor | undefined;
  for (const t of sorted) {
    if (t.begin < cursor) throw refuse(`tensor ${quoteName(t.name)} overlaps tensor ${quoteName(previous!.name)}`);
    if (t.begin > cursor) throw refuse(`${t.begin - cursor} bytes before tensor ${quoteName(t.name)} belong to no tensor`);
    cursor = t.end;
    previous = t;
  }
  if (cursor < fileLength) throw refuse(`its last ${fileLength - cursor} bytes belong to no tensor`);
  return { fileLength, dataStart, metadata, tensors };
}

function checkMetadata(entry: unknown): Record<string, string> {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw refuse('its __metadata__ is not an object');
  for (const [key, value] of Object.entries(entry)) {
    if (typeof value !== 'string') throw refuse(`its __metadata__ value ${quoteName(key)} is not a string`);
  }
  return entry as Record<string, string>;
}

function checkTensor(name: string, entry: unknown, dataStart: number, dataLength: number): SafetensorsTensor {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw refuse(`tensor ${quoteName(name)} is not described by an object`);
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string' || !Object.hasOwn(SAFETENSORS_DTYPES, dtype)) {
    throw refuse(`tensor ${quoteName(name)} has dtype ${JSON.stringify(dtype)}, which Kiln does not know`);
  }
  const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!Array.isArray(shape) || !shape.every(isCount)) throw refuse(`tensor ${quoteName(name)} has a shape that is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw refuse(`tensor ${quoteName(name)} has data_offsets that are not [begin, end] with begin ≤ end`);
  }
  const elements = shape.reduce((a: number, b: number) => a * b, 1);
  const bytes = elements * SAFETENSORS_DTYPES[dtype as SafetensorsDtype];
  if (!Number.isSafeInteger(bytes)) throw refuse(`tensor ${quoteName(name)} has an impossibly large shape`);
  const [begin, end] = offsets as [number, number];
  if (end > dataLength) throw refuse(`tensor ${quoteName(name)} ends at byte ${end} of a ${dataLength}-byte data section`);
  if (end - begin !== bytes) {
    throw refuse(`tensor ${quoteName(name)} (${dtype} [${shape.join(', ')}]) needs ${bytes} bytes but its data_offsets span ${end - begin}`);
  }
  return { name, dtype: dtype as SafetensorsDtype, shape, begin: dataStart + begin, end: dataStart + end };
}

/** A floating-point tensor's values as float32, whatever its stored precision. */
export function tensorAsFloat32(bytes: Uint8Array, tensor: SafetensorsTensor): Float32Array {
  const src = bytes.subarray(tensor.begin, tensor.end);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const n = tensor.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  switch (tensor.dtype) {
    case 'F32':
      new Uint8Array(out.buffer).set(src);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfBitsToFloat(view.getUint16(2 * i, true));
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) out[i] = bfloat16BitsToFloat(view.getUint16(2 * i, true));
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    default:
      throw new ModelFileError(`Tensor ${quoteName(tensor.name)} is ${tensor.dtype}, not a floating-point type Kiln can read.`);
  }
  return out;
}

export interface TensorToWrite {
  dtype: 'F32' | 'F16';
  shape: number[];
  data: Float32Array;
}

/** Writes a safetensors file, tensors in the given order, header padded to 8 bytes. */
export function writeSafetensors(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const entries = Object.entries(tensors);
  for (const [name, t] of entries) {
    if (t.data.length !== t.shape.reduce((a, b) => a * b, 1)) throw new Error(`${name}: ${t.data.length} values do not fill [${t.shape}]`);
    const size = t.data.length * SAFETENSORS_DTYPES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const [, t] of entries) {
    if (t.dtype === 'F32') {
      for (let i = 0; i < t.data.length; i++) view.setFloat32(pos + 4 * i, t.data[i]!, true);
    } else {
      for (let i = 0; i < t.data.length; i++) view.setUint16(pos + 2 * i, floatToHalfBits(t.data[i]!), true);
    }
    pos += t.data.length * SAFETENSORS_DTYPES[t.dtype];
  }
  return out;
}

/**
 * The same file with `metadata` merged into its `__metadata__`: the header is re-encoded (and
 * padded to 8 bytes again), the data section copied as it is, since offsets count from its start.
 */
export function withSafetensorsMetadata(bytes: Uint8Array, metadata: Record<string, string>): Uint8Array {
  const { dataStart } = parseSafetensors(bytes);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, dataStart))) as Record<string, unknown>;
  header.__metadata__ = { ...(header.__metadata__ as Record<string, string> | undefined), ...metadata };
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + bytes.length - dataStart);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(bytes.subarray(dataStart), 8 + headerBytes.length);
  return out;
}
