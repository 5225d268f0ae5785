import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { KilnError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * The edge where errors become contract errors: a KilnError keeps its code and message; any
 * other error is logged whole and reaches the client as INTERNAL_SERVER_ERROR with a masked
 * message (and, with debug on, its own message and stack).
 */
export function createMaskError(log: Logger, debug: boolean) {
  return (error: unknown, message: string): Error => {
    const gql = error instanceof GraphQLError ? error : undefined;
    const original = gql?.originalError ?? error;
    const location = { nodes: gql?.nodes, source: gql?.source, positions: gql?.positions, path: gql?.path };
    if (original instanceof KilnError) {
      return new GraphQLError(original.message, { ...location, extensions: { code: original.code, ...original.extensions } });
    }
    if (gql && !gql.originalError) return gql; // graphql-js's own request errors; coded by useContractCodes
    log.error({ err: original, path: gql?.path }, 'unexpected error in a GraphQL operation');
    const cause = original instanceof Error ? original : new Error(String(original));
    return new GraphQLError(debug ? cause.message : message, {
      ...location,
      extensions: { code: 'INTERNAL_SERVER_ERROR', ...(debug ? { stack: cause.stack } : {}) },
    });
  };
}

/** Malformed or invalid operations (parse, validation, variables) are BAD_USER_INPUT. */
export function codeRequestErrors<T extends readonly GraphQLError[]>(errors: T): GraphQLError[] {
  return errors.map((e) =>
    e.extensions?.code && e.extensions.code !== 'GRAPHQL_VALIDATION_FAILED' && e.extensions.code !== 'GRAPHQL_PARSE_FAILED'
      ? e
      : new GraphQLError(e.message, {
          nodes: e.nodes,
          source: e.source,
          positions: e.positions,
          path: e.path,
          originalError: e.originalError,
          extensions: { ...e.extensions, code: 'BAD_USER_INPUT' },
        }),
  );
}

/** Gives every error in every result a contract code, over HTTP and WebSocket alike. */
export function useContractCodes(): Plugin {
  return {
    onValidate: () => ({ result, setResult }) => {
      if (result.length) setResult(codeRequestErrors(result as readonly GraphQLError[]));
    },
    onExecute: () => ({
      onExecuteDone: ({ result, setResult }) => {
        if ('errors' in result && result.errors?.some((e) => !e.extensions?.code)) {
          setResult({ ...result, errors: codeRequestErrors(result.errors) });
        }
      },
    }),
  };
}
