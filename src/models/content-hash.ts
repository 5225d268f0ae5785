import crypto from 'node:crypto';
import type { ModelFile } from '../db/entities/model.js';

/** A folder model's identity: the hash of its sorted (path, hash) list. */
export function folderSha256(files: ModelFile[]): string {
  const lines = [...files].sort((a, b) => (a.path < b.path ? -1 : 1)).map((f) => `${f.sha256}  ${f.path}\n`);
  return crypto.createHash('sha256').update(lines.join('')).digest('hex');
}
