import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { createFetch } from '@whatwg-node/fetch';
import { NoSchemaIntrospectionCustomRule } from 'graphql';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { schema } from '../schema/index.js';
import type { UrlSigner } from '../storage/url-signer.js';
import { ApiKeys, clientAddress, unauthenticated } from './clients.js';
import type { Context, Services } from './context.js';
import { createMaskError, useContractCodes } from './errors.js';
import { useSignedFiles } from './files.js';
import { renderKilnGraphiQL, useGraphiQLAssets } from './graphiql.js';
import { MAX_OPERATION_BYTES, useBodyLimits } from './limits.js';
import { createLoaders } from './loaders.js';
import { type Ops, useOps } from './ops.js';
import { useRequestIds, useRequestLog } from './request-log.js';
import { MAX_NESTING, useBoundedParser } from './parser.js';
import { useStorableText } from './storable-text.js';
import { useSharedSubscriptionResults } from './shared-subscription-results.js';
import { useSignedUploads } from './uploads.js';
import { useWebApp, webAppSettings } from './web-app.js';

/**
 * What yoga hands the context factory: the HTTP request, or for graphql-ws the upgrade request
 * and what onConnect learnt (ws.ts).
 */
export interface ServerContext {
  req?: IncomingMessage;
  /** The API key's name a WebSocket connection authenticated with. */
  apiKeyName?: string;
}

export type Yoga = YogaServerInstance<ServerContext, Context>;

/** The GraphQL app, without a port: main serves it over HTTP and WS, tests call yoga.fetch(). */
export function buildYoga(services: Services, signer: UrlSigner, ops: Ops): Yoga {
  const { config, log } = services;
  const g = config.graphql;
  const requestIds = useRequestIds();
  // The largest multipart upload, with room for its operation and map.
  const multipartBytes = config.uploads.maxMultipartBytes + 1024 * 1024;
  const maxFiles = 2 * config.datasets.maxImages + 100;
  return createYoga<ServerContext, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    graphiql: g.graphiql ? { subscriptionsProtocol: 'WS', title: 'Kiln' } : false,
    renderGraphiQL: renderKilnGraphiQL,
    landingPage: false,
    // Kiln answers /health itself (ops.ts), with every check.
    healthCheckEndpoint: '/_yoga/health',
    // Errors are logged where they are masked (server/errors.ts), with the request's id.
    logging: false,
    maskedErrors: { maskError: createMaskError(log, config.debugErrors) },
    // A backstop: useBodyLimits holds each kind of request to its own limit first.
    maxRequestBodySize: multipartBytes,
    // yoga holds multipart files in memory: the limit bounds what one request can take.
    fetchAPI: createFetch({
      // Files: one model, or a dataset's images and captions (and zips of them) in one request.
      formDataLimits: { fileSize: config.uploads.maxMultipartBytes, files: maxFiles, fieldSize: 1024 * 1024, fields: 16, parts: maxFiles + 20 },
    }),
    plugins: [
      requestIds.plugin,
      useOps(ops),
      useSignedFiles(services.storage, signer),
      useSignedUploads(services.storage, signer),
      useGraphiQLAssets(g.graphiql), useWebApp(webAppSettings(config)),
      useContractCodes(),
      useBodyLimits({ operationBytes: MAX_OPERATION_BYTES, multipartBytes }),
      // Multipart and other "simple" requests skip CORS preflight; they must carry this header.
      useCSRFPrevention({ requestHeaders: ['x-graphql-yoga-csrf', 'apollo-require-preflight', 'graphql-preflight'] }),
      EnvelopArmorPlugin({
        maxDepth: { n: g.maxDepth },
        maxAliases: { n: g.maxAliases },
        // Counted by the bounded parser, before graphql-js's recursive descent can overflow the stack.
        maxTokens: { enabled: false },
        costLimit: { maxCost: g.maxCost },
        maxDirectives: { n: 50 },
        blockFieldSuggestion: { enabled: !g.introspection },
      }),
      useBoundedParser({ maxTokens: g.maxTokens, maxNesting: MAX_NESTING }),
      useStorableText(),
      ...(g.introspection ? [] : [useNoIntrospection()]),
      useRequestLog(log),
      useSharedSubscriptionResults(),
    ],
    context: ({ request, req, apiKeyName }) => {
      const apiKeys = services.apiKeys;
      let keyName = apiKeyName;
      if (request && apiKeys.enabled) {
        keyName = apiKeys.nameOf(ApiKeys.fromAuthorization(request.headers.get('authorization')));
        if (!keyName) throw unauthenticated();
      }
      const requestId = (request && requestIds.idOf(request)) ?? crypto.randomUUID();
      const host = request?.headers.get('host') ?? req?.headers.host ?? `localhost:${config.http.port}`;
      const proto = request ? new URL(request.url).protocol.replace(':', '') : 'http';
      const ip = clientAddress(req, request?.headers.get('x-forwarded-for') ?? req?.headers['x-forwarded-for']?.toString(), config.rateLimit.trustProxy);
      return {
        services,
        loaders: createLoaders(services.ds),
        baseUrl: config.http.publicUrl ?? `${proto}://${host}`,
        requestId,
        client: { key: keyName ? `key:${keyName}` : `ip:${ip ?? 'unknown'}`, apiKey: keyName, ip },
        log: log.child({ requestId }),
      };
    },
  });
}

/** No introspection: a validation rule, so it holds over HTTP and graphql-ws alike. */
function useNoIntrospection(): Plugin {
  return {
    onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule),
  };
}
