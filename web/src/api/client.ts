import { createClient as createWsClient } from 'graphql-ws';
import { Client, fetchExchange, mapExchange, subscriptionExchange } from 'urql';
import { apiKey, authHeaders } from './api-key';
import { isUnauthenticated } from './errors';

/** graphql-ws closes a socket whose connection_init carried no valid key with this code. */
const UNAUTHORIZED_CLOSE = 4401;

export const graphqlWsUrl = () => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;

/**
 * One urql client per API key: queries and mutations over HTTP, subscriptions over one
 * graphql-ws socket, the key on both. A refusal of the key (HTTP 401, close 4401) is reported
 * to the key store, which asks the user for another.
 */
export function createKilnClient(key: string | null): { client: Client; dispose(): void } {
  const ws = createWsClient({
    url: graphqlWsUrl(),
    lazy: true,
    connectionParams: authHeaders(key),
    retryAttempts: Infinity,
    // graphql-ws never retries 4401 itself; a restart of Kiln is retried with growing pauses.
    on: {
      closed: (event) => {
        if ((event as CloseEvent | undefined)?.code === UNAUTHORIZED_CLOSE) apiKey.reject();
      },
    },
  });
  const client = new Client({
    url: '/graphql',
    // JSON POSTs: GET requests would need yoga's CSRF header, and must not be cached.
    preferGetMethod: false,
    requestPolicy: 'network-only',
    fetchOptions: () => ({ headers: authHeaders(key) }),
    exchanges: [
      mapExchange({
        onError(error) {
          if (isUnauthenticated(error)) apiKey.reject();
        },
      }),
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ],
  });
  return { client, dispose: () => void ws.dispose() };
}

/** An id for one submission, so that a repeated request queues nothing twice. */
export function idempotencyKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  // crypto.randomUUID is only there on secure origins (https, localhost).
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}
