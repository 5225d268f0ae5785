import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { createFetch } from '@whatwg-node/fetch';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { schema } from '../schema/index.js';
import type { UrlSigner } from '../storage/url-signer.js';
import type { Context, Services } from './context.js';
import { createMaskError, useContractCodes } from './errors.js';
import { useSignedFiles } from './files.js';
import { MAX_OPERATION_BYTES, useBodyLimit } from './limits.js';
import { useSignedUploads } from './uploads.js';
import { createLoaders } from './loaders.js';

/** What yoga hands the context factory: an HTTP request, or the WebSocket upgrade request. */
export interface ServerContext {
  req?: IncomingMessage;
}

export type Yoga = YogaServerInstance<ServerContext, Context>;

/** The GraphQL app, without a port: main serves it over HTTP and WS, tests call yoga.fetch(). */
export function buildYoga(services: Services, signer: UrlSigner): Yoga {
  const { config, log } = services;
  return createYoga<ServerContext, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    graphiql: { subscriptionsProtocol: 'WS', title: 'Kiln' },
    landingPage: false,
    // Errors are logged where they are masked (server/errors.ts), with the request's id.
    logging: false,
    maskedErrors: { maskError: createMaskError(log, config.debugErrors) },
    // Room for the largest multipart upload; other requests get a far smaller limit (limits.ts).
    maxRequestBodySize: config.uploads.maxMultipartBytes + 1024 * 1024,
    // yoga holds multipart files in memory: the limit bounds what one request can take.
    fetchAPI: createFetch({
      formDataLimits: { fileSize: config.uploads.maxMultipartBytes, files: 1, fieldSize: 1024 * 1024, fields: 16, parts: 20 },
    }),
    plugins: [
      useContractCodes(),
      useBodyLimit(MAX_OPERATION_BYTES),
      // Multipart and other "simple" requests skip CORS preflight; they must carry this header.
      useCSRFPrevention({ requestHeaders: ['x-graphql-yoga-csrf', 'apollo-require-preflight', 'graphql-preflight'] }),
      useSignedFiles(services.storage, signer),
      useSignedUploads(services.storage, signer),
    ],
    context: ({ request, req }) => {
      const requestId = request?.headers.get('x-request-id') ?? crypto.randomUUID();
      const host = request?.headers.get('host') ?? req?.headers.host ?? `localhost:${config.http.port}`;
      const proto = request ? new URL(request.url).protocol.replace(':', '') : 'http';
      return {
        services,
        loaders: createLoaders(services.ds),
        baseUrl: config.http.publicUrl ?? `${proto}://${host}`,
        requestId,
        log: log.child({ requestId }),
      };
    },
  });
}
