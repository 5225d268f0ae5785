import type { Server } from 'node:http';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { codeRequestErrors } from './errors.js';
import type { Yoga } from './yoga.js';

/** Largest message a client may send over the socket (ws accepts 100 MiB by default). */
const MAX_PAYLOAD_BYTES = 1024 * 1024;

/**
 * graphql-ws on the same path and port as HTTP. Operations go through yoga's envelope, so
 * HTTP and WebSocket share one context, one validation and one error mask.
 */
export function attachWebSocket(server: Server, yoga: Yoga) {
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: MAX_PAYLOAD_BYTES });
  const disposable = useServer(
    {
      execute: (args) => (args.rootValue as Envelope).execute(args),
      subscribe: (args) => (args.rootValue as Envelope).subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const env = yoga.getEnveloped({ ...ctx, req: ctx.extra.request, socket: ctx.extra.socket, params });
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
    },
    wss,
  );
  return {
    async close() {
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

// yoga's execute and subscribe for this operation, carried to graphql-ws through rootValue.
interface Envelope {
  execute: (args: ExecutionArgs) => OperationResult;
  subscribe: (args: ExecutionArgs) => OperationResult;
}
type OperationResult = ReturnType<NonNullable<Parameters<typeof useServer>[0]['execute']>>;
