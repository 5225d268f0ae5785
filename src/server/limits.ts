import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** Largest GraphQL request that is not a file upload (query and variables). */
export const MAX_OPERATION_BYTES = 1024 * 1024;

export interface BodyLimits {
  /** JSON, GraphQL and form bodies. */
  operationBytes: number;
  /** GraphQL multipart requests (file uploads), the whole body. */
  multipartBytes: number;
}

const tooLarge = (limit: number) =>
  new GraphQLError(`Request body too large: at most ${limit} bytes`, {
    // The client may still be sending: the connection is closed after the answer, not drained.
    extensions: { code: 'PAYLOAD_TOO_LARGE', http: { status: 413, headers: { connection: 'close' } } },
  });

/**
 * Holds every request body to its limit, whatever its framing: a declared Content-Length over
 * it is refused before a byte is read, and any body (chunked ones included) is counted as it
 * arrives and refused with 413 the moment the count passes the limit, so memory stays bounded.
 * A body the request parser cannot read (invalid JSON, a broken multipart `map`) is the
 * request's own fault: HTTP 400, whatever the client accepts.
 */
export function useBodyLimits(limits: BodyLimits): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const multipart = (request.headers.get('content-type') ?? '').toLowerCase().startsWith('multipart/form-data');
      const limit = multipart ? limits.multipartBytes : limits.operationBytes;
      if (Number(request.headers.get('content-length') ?? 0) > limit) throw tooLarge(limit);
      if (!requestParser) return;
      const parse = requestParser;
      setRequestParser(async (req) => {
        let received = 0;
        let exceeded = false;
        const counted = req.body
          ? new fetchAPI.Request(req.url, {
              method: req.method,
              headers: req.headers,
              signal: req.signal,
              body: req.body.pipeThrough(
                new fetchAPI.TransformStream<Uint8Array, Uint8Array>({
                  transform(chunk, controller) {
                    received += chunk.byteLength;
                    if (received > limit) {
                      exceeded = true;
                      controller.error(tooLarge(limit));
                    } else controller.enqueue(chunk);
                  },
                }),
              ),
              // @ts-expect-error Node's RequestInit needs this for a streamed body; the DOM typings lack it
              duplex: 'half',
            })
          : req;
        try {
          return await parse(counted);
        } catch (err) {
          if (exceeded) throw tooLarge(limit);
          throw asBadRequest(err);
        }
      });
    },
  };
}

/** A body yoga could not read: 400 with the contract's code, as the GraphQL-over-HTTP spec asks. */
function asBadRequest(err: unknown): unknown {
  if (!(err instanceof GraphQLError)) return err;
  const http = (err.extensions.http ?? {}) as { status?: number; headers?: Record<string, string> };
  if (http.status && http.status !== 400) return err;
  return new GraphQLError(err.message, {
    extensions: { code: 'BAD_USER_INPUT', http: { status: 400, ...(http.headers ? { headers: http.headers } : {}) } },
  });
}
