import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * The key that signs file URLs: the configured one, or one made on first start and kept in the
 * data folder, so links stay valid across restarts and every process on the machine agrees.
 */
export async function loadUrlSecret(configured: string | undefined, dataDir: string): Promise<string> {
  if (configured) return configured;
  const file = path.join(dataDir, 'url-secret');
  const existing = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (existing?.trim()) return existing.trim();
  await fs.mkdir(dataDir, { recursive: true });
  const secret = crypto.randomBytes(32).toString('base64url');
  // wx: when two processes start at once, the first write wins and the second reads it.
  await fs.writeFile(file, secret, { flag: 'wx', mode: 0o600 }).catch(async (err) => {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  });
  return (await fs.readFile(file, 'utf8')).trim();
}
