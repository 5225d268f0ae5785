import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { schema } from '../schema/index.js';
import type { UrlSigner } from '../storage/url-signer.js';
import type { Context, Services } from './context.js';
import { createMaskError, useContractCodes } from './errors.js';
import { useSignedFiles } from './files.js';
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
    plugins: [useContractCodes(), useSignedFiles(services.storage, signer)],
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
