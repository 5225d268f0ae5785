import { JobFailure } from '../../errors.js';
import { parseLoraAdapter } from '../../models/lora-adapter.js';
import { ModelFileError, quoteName } from '../../models/model-file-error.js';
import { parseSafetensors } from '../../models/safetensors.js';

/** What an external trainer's finished adapter must look like before Kiln takes it. */
export interface AdapterExpectations {
  /** The trainer's LoRA key layout: every tensor name must match. */
  key: RegExp;
  /** What the key layout is called, for messages. */
  layout: string;
  rank: number;
  alpha: number;
  /** The trainer's own metadata checks: each returns a problem, or null. */
  metadata: ((metadata: Record<string, string>) => string | null)[];
}

const refuse = (trainer: string, problem: string) => new JobFailure('TRAINER_OUTPUT_INVALID', `${trainer} wrote an adapter Kiln cannot take: ${problem}`, false);

/** Checks the file's keys, ranks, alphas and metadata; returns its metadata. */
export function checkTrainedAdapter(trainer: string, bytes: Uint8Array, expect: AdapterExpectations): Record<string, string> {
  let header;
  let adapter;
  try {
    header = parseSafetensors(bytes);
    adapter = parseLoraAdapter(bytes);
  } catch (err) {
    if (err instanceof ModelFileError) throw refuse(trainer, err.message);
    throw err;
  }
  const stray = header.tensors.find((t) => !expect.key.test(t.name));
  if (stray) throw refuse(trainer, `its tensor ${quoteName(stray.name)} is not in ${expect.layout}`);
  for (const m of adapter.modules) {
    if (m.rank !== expect.rank) throw refuse(trainer, `module ${quoteName(m.path)} has rank ${m.rank}, not the ${expect.rank} asked for`);
    if (Math.abs(m.alpha - expect.alpha) > 1e-3 * Math.max(1, expect.alpha)) throw refuse(trainer, `module ${quoteName(m.path)} has alpha ${m.alpha}, not the ${expect.alpha} asked for`);
  }
  for (const check of expect.metadata) {
    const problem = check(header.metadata);
    if (problem) throw refuse(trainer, problem);
  }
  return header.metadata;
}
