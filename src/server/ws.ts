import type { Server } from 'node:http';
import { type ExecutionArgs, GraphQLError, type GraphQLFormattedError } from 'graphql';
import { CloseCode, type ServerOptions } from 'graphql-ws';
import { WebSocketServer } from 'ws';
import type { Logger } from '../log.js';
import { ApiKeys } from './clients.js';
import { codeRequestErrors } from './errors.js';
import { serveGraphqlWs } from './ws-transport.js';
import type { Yoga } from './yoga.js';

/** Largest message a client may send over the socket (ws accepts 100 MiB by default). */
const MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Sent when connection_init carries no valid API key; clients treat it as final, not retried. */
export const UNAUTHORIZED_CLOSE = CloseCode.Unauthorized; // 4401

export interface WebSocketOptions {
  apiKeys: ApiKeys;
  /** Operations one socket may run at once. */
  maxSubscriptions: number;
  /** Protocol pings; a peer that does not answer one in time is dropped. */
  keepAliveMs: number;
  log: Logger;
}

/**
 * graphql-ws on the same path and port as HTTP. Operations go through yoga's envelope, so
 * HTTP and WebSocket share one context, one validation (security limits included) and one
 * error mask. With API keys on, connection_init must carry one (`authorization: "Bearer <key>"`
 * or `apiKey`), or the socket is closed with 4401.
 */
export function attachWebSocket(server: Server, yoga: Yoga, opts: WebSocketOptions) {
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: MAX_PAYLOAD_BYTES });
  const disposable = serveGraphqlWs<{ apiKeyName?: string }>(
    {
      execute: (args) => (args.rootValue as Envelope).execute(args),
      subscribe: (args) => (args.rootValue as Envelope).subscribe(args),
      onConnect: (ctx) => {
        if (!opts.apiKeys.enabled) return true;
        const params = ctx.connectionParams ?? {};
        const presented = ApiKeys.fromAuthorization(String(params.authorization ?? params.Authorization ?? '')) ?? (typeof params.apiKey === 'string' ? params.apiKey : undefined);
        const name = opts.apiKeys.nameOf(presented);
        if (!name) {
          ctx.extra.socket.close(UNAUTHORIZED_CLOSE, 'Unauthorized');
          return false;
        }
        ctx.extra.apiKeyName = name;
        return true;
      },
      onSubscribe: async (ctx, _id, params) => {
        if (Object.keys(ctx.subscriptions).length >= opts.maxSubscriptions) {
          return [new GraphQLError(`at most ${opts.maxSubscriptions} operations at once per connection`, { extensions: { code: 'FORBIDDEN' } })];
        }
        const env = yoga.getEnveloped({ ...ctx, req: ctx.extra.request, socket: ctx.extra.socket, params, apiKeyName: ctx.extra.apiKeyName });
        let document;
        try {
          document = env.parse(params.query);
          const errors = env.validate(env.schema, document);
          if (errors.length) return codeRequestErrors(errors);
        } catch (err) {
          // Returned, not thrown: a throw here closes the whole socket (4500) for every operation on it.
          if (err instanceof GraphQLError) return codeRequestErrors([err]);
          throw err;
        }
        return {
          schema: env.schema,
          document,
          operationName: params.operationName,
          variableValues: params.variables,
          contextValue: await env.contextFactory(),
          rootValue: { execute: env.execute, subscribe: env.subscribe },
        };
      },
      // Errors carry HTTP's status and headers for yoga's responses; a socket has no use for them.
      onNext: (_ctx, _id, _payload, _args, result) => (result.errors?.length ? { ...result, errors: result.errors.map(withoutHttp) } : undefined),
      onError: (_ctx, _id, _payload, errors) => errors.map(withoutHttp),
    },
    wss,
    opts.keepAliveMs,
    opts.log,
  );
  return {
    async close() {
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

function withoutHttp(error: GraphQLError): GraphQLFormattedError {
  const { http: _http, ...extensions } = error.extensions ?? {};
  return { ...error.toJSON(), ...(Object.keys(extensions).length ? { extensions } : {}) };
}

// yoga's execute and subscribe for this operation, carried to graphql-ws through rootValue.
interface Envelope {
  execute: (args: ExecutionArgs) => OperationResult;
  subscribe: (args: ExecutionArgs) => OperationResult;
}
type OperationResult = ReturnType<NonNullable<ServerOptions['execute']>>;
