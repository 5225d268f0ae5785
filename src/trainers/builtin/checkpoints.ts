import fs from 'node:fs/promises';
import path from 'node:path';
import { parseSafetensors, tensorAsFloat32, writeSafetensors } from '../../models/safetensors.js';

/**
 * The built-in trainer's checkpoints: `checkpoints/step-000050.safetensors` in the work folder,
 * holding the LoRA's values and AdamW's moments as float32 (their exact state), the loss curve
 * so far and the fingerprint of what is being trained. A resumed training restores all of it,
 * and every later step depends only on it and on (seed, step), so it ends with the same bytes
 * as one that was never interrupted. Files are written aside and renamed into place: a process
 * killed while writing leaves no half checkpoint.
 */

export interface CheckpointState {
  step: number;
  fingerprint: string;
  lora: Float32Array;
  m: Float32Array;
  v: Float32Array;
  /** Losses of steps 1…step. */
  losses: number[];
}

const FOLDER = 'checkpoints';
const NAME = /^step-(\d{6,})\.safetensors$/;

export async function writeCheckpoint(workDir: string, state: CheckpointState): Promise<string> {
  const dir = path.join(workDir, FOLDER);
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, `step-${String(state.step).padStart(6, '0')}.safetensors`);
  const vector = (data: Float32Array) => ({ dtype: 'F32' as const, shape: [data.length], data });
  const bytes = writeSafetensors(
    { lora: vector(state.lora), 'adamw.m': vector(state.m), 'adamw.v': vector(state.v) },
    { 'kiln.checkpoint_step': String(state.step), 'kiln.fingerprint': state.fingerprint, 'kiln.losses': JSON.stringify(state.losses) },
  );
  const aside = `${file}.${process.pid}.partial`;
  await fs.writeFile(aside, bytes);
  await fs.rename(aside, file);
  return file;
}

/** The latest checkpoint of this training (same fingerprint) in the work folder, or null. */
export async function latestCheckpoint(workDir: string, fingerprint: string): Promise<(CheckpointState & { path: string }) | null> {
  const dir = path.join(workDir, FOLDER);
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const steps = names.flatMap((n) => (NAME.test(n) ? [Number(NAME.exec(n)![1])] : [])).sort((a, b) => b - a);
  for (const step of steps) {
    const file = path.join(dir, `step-${String(step).padStart(6, '0')}.safetensors`);
    const state = readCheckpoint(new Uint8Array(await fs.readFile(file)));
    if (state?.fingerprint === fingerprint && state.step === step) return { ...state, path: file };
  }
  return null;
}

function readCheckpoint(bytes: Uint8Array): CheckpointState | null {
  try {
    const header = parseSafetensors(bytes);
    const tensor = (name: string) => {
      const t = header.tensors.find((x) => x.name === name);
      if (!t) throw new Error(`no ${name}`);
      return tensorAsFloat32(bytes, t);
    };
    const meta = header.metadata;
    const losses: unknown = JSON.parse(meta['kiln.losses'] ?? 'null');
    const step = Number(meta['kiln.checkpoint_step']);
    if (!Array.isArray(losses) || losses.length !== step || !losses.every((l) => typeof l === 'number')) return null;
    return { step, fingerprint: meta['kiln.fingerprint'] ?? '', lora: tensor('lora'), m: tensor('adamw.m'), v: tensor('adamw.v'), losses };
  } catch {
    // Not one of ours, or damaged: an older checkpoint serves instead.
    return null;
  }
}
