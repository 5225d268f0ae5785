import crypto from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { badInput, conflict } from '../errors.js';

/** Hash of an operation and its (validated) input, independent of key order. */
export function requestHash(operation: string, input: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined && x !== null).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, canonical(x)]))
        : v;
  return crypto.createHash('sha256').update(JSON.stringify([operation, canonical(input)])).digest('hex');
}

export function checkKey(key: string) {
  if (key.length < 1 || key.length > 255 || /[^\x21-\x7e]/.test(key)) {
    throw badInput('idempotencyKey', 'must be 1 to 255 printable ASCII characters without spaces');
  }
}

/**
 * Claims an idempotency key inside the submitting transaction. The unique key does the work:
 * of requests racing with one key, one inserts and the others wait for its commit, then read what
 * it made. Returns the job ids of an earlier request with the same key and input, or
 * undefined when this request owns the key (and must call `record` once it has its ids). A key
 * whose earlier request had another input is a CONFLICT; expired keys are free again.
 */
export async function claimKey(em: EntityManager, scope: string, key: string, hash: string, ttlHours: number): Promise<string[] | undefined> {
  checkKey(key);
  const claimed = await em.query(
    `INSERT INTO idempotency_keys (scope, key, request_hash, expires_at) VALUES ($1, $2, $3, now() + make_interval(hours => $4))
     ON CONFLICT (scope, key) DO UPDATE
       SET request_hash = EXCLUDED.request_hash, job_ids = '{}', created_at = now(), expires_at = EXCLUDED.expires_at
       WHERE idempotency_keys.expires_at < now()
     RETURNING key`,
    [scope, key, hash, ttlHours],
  );
  if (claimed.length) return undefined;
  const [earlier] = await em.query('SELECT request_hash, job_ids FROM idempotency_keys WHERE scope = $1 AND key = $2', [scope, key]);
  if (earlier.request_hash !== hash) throw conflict(`idempotency key ${JSON.stringify(key)} was used with another input`);
  return earlier.job_ids as string[];
}

export async function recordKey(em: EntityManager, scope: string, key: string, jobIds: string[]): Promise<void> {
  await em.query('UPDATE idempotency_keys SET job_ids = $3 WHERE scope = $1 AND key = $2', [scope, key, jobIds]);
}
