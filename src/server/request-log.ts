import crypto from 'node:crypto';
import { type DocumentNode, Kind } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from '../log.js';
import type { Context } from './context.js';

/**
 * Each HTTP request's id: the client's `x-request-id` when it sends one, else a new one; echoed
 * in the response and carried by every log line about the request.
 */
export function useRequestIds() {
  const ids = new WeakMap<Request, string>();
  const plugin: Plugin = {
    onRequest({ request }) {
      const given = request.headers.get('x-request-id');
      ids.set(request, given && /^[\w.:-]{1,128}$/.test(given) ? given : crypto.randomUUID());
    },
    onResponse({ request, response }) {
      const id = ids.get(request);
      if (id) response.headers.set('x-request-id', id);
    },
  };
  return { plugin, idOf: (request: Request) => ids.get(request) };
}

/** One line per operation: its name, how long it took, and whether it failed. */
export function useRequestLog(log: Logger): Plugin<Context> {
  return {
    onExecute({ args }) {
      const started = performance.now();
      const ctx = args.contextValue;
      const operation = args.operationName ?? operationNameOf(args.document);
      return {
        onExecuteDone({ result }) {
          const errors = 'errors' in result ? (result.errors?.length ?? 0) : 0;
          (ctx.log ?? log).info({ operation, client: ctx.client?.key, ms: Math.round(performance.now() - started), errors }, 'graphql operation');
        },
      };
    },
    onSubscribe({ args }) {
      const ctx = args.contextValue;
      const operation = args.operationName ?? null;
      (ctx.log ?? log).info({ operation, client: ctx.client?.key }, 'graphql subscription');
    },
  };
}

function operationNameOf(document: DocumentNode): string | null {
  for (const d of document.definitions) if (d.kind === Kind.OPERATION_DEFINITION) return d.name?.value ?? null;
  return null;
}
