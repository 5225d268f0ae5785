/** The error codes of the public contract (`extensions.code`). */
export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'RATE_LIMITED'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNAVAILABLE'
  /** A model whose weights and working memory would not fit in the memory left (refused before loading). */
  | 'INSUFFICIENT_MEMORY'
  | 'INTERNAL_SERVER_ERROR';

/**
 * A refusal whose message is safe to show to clients. Anything else thrown is masked at the
 * edge and logged whole.
 */
export class KilnError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'KilnError';
  }
}

/**
 * Several refusals of one request found together (a dataset's files, each checked before any is
 * refused): each reaches the client as an error of its own, with its own code and field, so all
 * can be fixed at once. Where one error is told (logs), it is the first, with the count of the rest.
 */
export class KilnRefusals extends KilnError {
  constructor(readonly refusals: readonly KilnError[]) {
    const first = refusals[0]!;
    super(first.code, refusals.length > 1 ? `${first.message} (and ${refusals.length - 1} more refusals)` : first.message, first.extensions);
  }
}

/** BAD_USER_INPUT for the input at `field` (e.g. `input.prompt`); the message starts with it. */
export const badInput = (field: string, problem: string) => new KilnError('BAD_USER_INPUT', `${field} ${problem}`, { field });
export const notFound = (what: string, id: string) => new KilnError('NOT_FOUND', `${what} ${id} does not exist`);
export const conflict = (message: string) => new KilnError('CONFLICT', message);

/**
 * Why a job's attempt failed, in words a client may read. `retryable` failures (I/O, storage,
 * a lost worker) are tried again; the others fail the job at once.
 */
export class JobFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'JobFailure';
  }
}
