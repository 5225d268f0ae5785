import fs from 'node:fs/promises';
import path from 'node:path';
import { LORA_FILE } from '../../models/intake.js';

/** A model's files on this host, once downloaded (and unpacked), before they are checked. */
export interface Fetched {
  /** The folder holding them, under the paths the model will have. */
  dir: string;
  paths: string[];
  /** Each file's sha256, taken as it was written (so that intake need not read them again). */
  hashes: Map<string, string>;
}

/**
 * A LoRA adapter's one file under the name models keep it under, in `dir`: linked, so that the
 * download stays where a retry finds it.
 */
export async function asLora(fetched: Fetched, dir: string): Promise<Fetched> {
  const file = fetched.paths[0]!;
  const target = path.join(dir, LORA_FILE);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  await fs.link(path.join(fetched.dir, file), target).catch(() => fs.copyFile(path.join(fetched.dir, file), target));
  return { dir, paths: [LORA_FILE], hashes: new Map([[LORA_FILE, fetched.hashes.get(file)!]]) };
}
