/**
 * Tells a database that cannot be reached from every other failure, through the ways pg,
 * pg-pool, TypeORM (QueryFailedError.driverError) and pg-boss hand such an error on: socket
 * errors, connection and pool timeouts, a connection the server closed, and Postgres' own codes
 * for "shutting down", "starting up" and connection exceptions. Anything else (a bad query, a
 * constraint) is not an outage and stays an internal error.
 */

/** Socket failures on the way to the server (net and dns error codes). */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/** SQLSTATEs: 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now; class 08 is connection_exception. */
const SERVER_CODES = new Set(['57P01', '57P02', '57P03']);

/** pg and pg-pool raise these without a code. */
const CLIENT_MESSAGES = [
  /^Connection terminated( unexpectedly| due to connection timeout)?$/,
  /^timeout exceeded when trying to connect$/,
  /^Client has encountered a connection error and is not queryable$/,
  /^Connection ended unexpectedly$/,
];

/**
 * TypeORM releases a query runner as soon as its connection reports an error (the server
 * terminating it, 57P01), without keeping that error: the transaction's next statement then
 * fails with one of these instead. Kiln never reuses a released runner otherwise.
 */
const RUNNER_LOST_ITS_CONNECTION = new Set(['QueryRunnerAlreadyReleasedError', 'QueryRunnerProviderAlreadyReleasedError']);

export function isDatabaseUnavailable(err: unknown): boolean {
  // Causes form a short chain; the bound guards against a cycle.
  const queue: unknown[] = [err];
  for (let i = 0; i < queue.length && i < 16; i++) {
    const e = queue[i] as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown; driverError?: unknown; errors?: unknown } | null;
    if (typeof e !== 'object' || e === null) continue;
    if (typeof e.name === 'string' && RUNNER_LOST_ITS_CONNECTION.has(e.name)) return true;
    if (typeof e.code === 'string' && (SOCKET_CODES.has(e.code) || SERVER_CODES.has(e.code) || /^08[0-9A-Z]{3}$/.test(e.code))) return true;
    if (typeof e.message === 'string' && CLIENT_MESSAGES.some((m) => m.test(e.message as string))) return true;
    queue.push(e.cause, e.driverError, ...(Array.isArray(e.errors) ? e.errors : []));
  }
  return false;
}
