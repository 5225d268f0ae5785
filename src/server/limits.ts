import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** Largest GraphQL request that is not a file upload (query and variables). */
export const MAX_OPERATION_BYTES = 1024 * 1024;

/**
 * yoga's own body limit has to leave room for multipart uploads; every other request is held
 * to `maxBytes` (by its declared length; one without is still bounded by yoga's limit).
 */
export function useBodyLimit(maxBytes: number): Plugin {
  return {
    onRequestParse({ request }) {
      const type = request.headers.get('content-type') ?? '';
      const length = Number(request.headers.get('content-length') ?? 0);
      if (!type.startsWith('multipart/form-data') && length > maxBytes) {
        throw new GraphQLError(`Request body too large: at most ${maxBytes} bytes`, {
          extensions: { code: 'PAYLOAD_TOO_LARGE', http: { status: 413 } },
        });
      }
    },
  };
}
