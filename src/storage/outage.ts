/**
 * Whether a storage error means the store is down rather than that the call was wrong: what
 * the circuit breaker counts. S3 answers with an HTTP status (5xx and SlowDown are outages; a
 * missing key or a refused signature is the store answering); a socket that cannot connect or
 * goes silent, and the SDK's timeouts, are outages; so are the errors a failing disk or network
 * mount gives local storage. Anything else (a stream the caller gave that broke, a bad key) is not.
 */

const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);
/** A disk or mount that stopped answering (NFS, FUSE, a dying device). */
const DISK_CODES = new Set(['EIO', 'ESTALE', 'ENOTCONN', 'EHOSTDOWN', 'ENODEV']);
const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);

export function isStorageOutage(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown; $metadata?: { httpStatusCode?: unknown }; cause?: unknown } | null;
  if (typeof e !== 'object' || e === null) return false;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number') return status >= 500;
  if (typeof e.code === 'string' && (SOCKET_CODES.has(e.code) || DISK_CODES.has(e.code))) return true;
  if (typeof e.name === 'string' && TIMEOUT_NAMES.has(e.name)) return true;
  return e.cause !== undefined && e.cause !== err && isStorageOutage(e.cause);
}
