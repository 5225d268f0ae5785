import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { KilnError, KilnRefusals } from '../errors.js';
import type { Logger } from '../log.js';
import { isDatabaseUnavailable } from '../db/outage.js';

/** What a client is told to wait before trying again while a dependency is down. */
export const UNAVAILABLE_RETRY_AFTER_S = 5;

/** UNAVAILABLE's extensions: when to retry, and for plain HTTP clients 503 with Retry-After. */
function unavailable(extensions: Record<string, unknown>) {
  const retryAfterSeconds = typeof extensions.retryAfterSeconds === 'number' ? Math.max(1, Math.ceil(extensions.retryAfterSeconds)) : UNAVAILABLE_RETRY_AFTER_S;
  return { ...extensions, code: 'UNAVAILABLE', retryAfterSeconds, http: { status: 503, headers: { 'Retry-After': String(retryAfterSeconds) } } };
}

/**
 * The edge where errors become contract errors: a KilnError keeps its code and message; a
 * database that cannot be reached is UNAVAILABLE (HTTP 503 with Retry-After), said without its
 * details; any other error is logged whole and reaches the client as INTERNAL_SERVER_ERROR with
 * a masked message (and, with debug on, its own message and stack).
 */
export function createMaskError(log: Logger, debug: boolean) {
  return (error: unknown, message: string): Error => {
    const gql = error instanceof GraphQLError ? error : undefined;
    let original: unknown = error;
    // graphql-js can wrap an error in GraphQLErrors more than once (subscriptions do).
    while (original instanceof GraphQLError && original.originalError) original = original.originalError;
    const location = { nodes: gql?.nodes, source: gql?.source, positions: gql?.positions, path: gql?.path };
    if (original instanceof KilnError) {
      const extensions = { code: original.code, ...original.extensions };
      return new GraphQLError(original.message, { ...location, extensions: original.code === 'UNAVAILABLE' ? unavailable(extensions) : extensions });
    }
    if (original instanceof GraphQLError) return original; // graphql-js's own request errors; coded by useContractCodes
    if (isDatabaseUnavailable(original)) {
      log.warn({ reason: (original as Error).message, code: (original as { code?: string }).code, path: gql?.path }, 'database unavailable');
      return new GraphQLError('The database is unavailable; try again shortly.', { ...location, extensions: unavailable({}) });
    }
    log.error({ err: original, path: gql?.path }, 'unexpected error in a GraphQL operation');
    const cause = original instanceof Error ? original : new Error(String(original));
    return new GraphQLError(debug ? cause.message : message, {
      ...location,
      extensions: { code: 'INTERNAL_SERVER_ERROR', ...(debug ? { stack: cause.stack } : {}) },
    });
  };
}

const CONTRACT_CODES = new Set<string>([
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'CONFLICT',
  'RATE_LIMITED',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'PAYLOAD_TOO_LARGE',
  'UNAVAILABLE',
  'INTERNAL_SERVER_ERROR',
]);

/** The contract's code for a refusal yoga or one of its plugins made with this HTTP status. */
const CODE_OF_STATUS: Record<number, string> = { 401: 'UNAUTHENTICATED', 403: 'FORBIDDEN', 413: 'PAYLOAD_TOO_LARGE', 429: 'RATE_LIMITED' };

/**
 * Errors that reach this point without a contract code are refusals of the request itself
 * (unparseable, invalid against the schema, variables of the wrong type, a malformed body, a
 * missing CSRF header, a multipart file over its limit): coded by the HTTP status they carry,
 * BAD_USER_INPUT otherwise. Server faults never get here uncoded: the mask gives them theirs.
 * Refusals found together (KilnRefusals) become an error each.
 */
export function codeRequestErrors(errors: readonly GraphQLError[]): GraphQLError[] {
  return errors.flatMap(expandRefusals).map((e) => {
    const code = e.extensions?.code;
    if (typeof code === 'string' && CONTRACT_CODES.has(code)) return e;
    const { originalError: _detail, ...extensions } = e.extensions ?? {};
    const status = (e.extensions?.http as { status?: number } | undefined)?.status;
    return new GraphQLError(e.message, {
      nodes: e.nodes,
      source: e.source,
      positions: e.positions,
      path: e.path,
      originalError: e.originalError,
      extensions: { ...extensions, code: (status && CODE_OF_STATUS[status]) ?? 'BAD_USER_INPUT' },
    });
  });
}

/**
 * KilnRefusals as one error per refusal, each with its own code and field, where the operation
 * failed. useContractCodes runs this before yoga masks the errors; a KilnRefusals the mask meets
 * alone is told as its first refusal, with the count of the others. The new errors carry no
 * originalError: yoga answers HTTP 500 for an error whose origin is not a GraphQLError.
 */
function expandRefusals(e: GraphQLError): GraphQLError[] {
  let original: unknown = e;
  while (original instanceof GraphQLError && original.originalError) original = original.originalError;
  if (!(original instanceof KilnRefusals)) return [e];
  return original.refusals.map((r) => new GraphQLError(r.message, { nodes: e.nodes, source: e.source, positions: e.positions, path: e.path, extensions: { code: r.code, ...r.extensions } }));
}

/** Gives every error in every result a contract code, over HTTP and WebSocket alike. */
export function useContractCodes(): Plugin {
  const recode = <T extends { errors?: readonly unknown[] }>(result: T): T | undefined =>
    result.errors?.length ? { ...result, errors: codeRequestErrors(result.errors as GraphQLError[]) } : undefined;
  return {
    onExecute: () => ({
      onExecuteDone: ({ result, setResult }) => {
        if (!(Symbol.asyncIterator in result)) {
          const coded = recode(result);
          if (coded) setResult(coded);
        }
      },
    }),
    onResultProcess: ({ result, setResult }) => {
      if (Array.isArray(result)) setResult(result.map((r) => recode(r) ?? r));
      else if (!(Symbol.asyncIterator in result)) {
        const coded = recode(result);
        if (coded) setResult(coded);
      }
    },
  };
}
