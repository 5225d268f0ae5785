import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventHub } from '../events/event-hub.js';
import type { Shared } from '../shared.js';
import { ApiKeys } from './clients.js';
import { listen } from './listen.js';
import { attachWebSocket } from './ws.js';
import { buildYoga } from './yoga.js';

/** The API: GraphQL over HTTP and graphql-ws on one port, with the files and ops routes. */
export async function startApi(shared: Shared) {
  const { config, ds, boss, storage, log } = shared;
  const hub = new EventHub(ds, shared.listener, log);
  const apiKeys = new ApiKeys(config.apiKeys);
  const yoga = buildYoga(
    { config, ds, boss, jobPolicy: shared.jobPolicy, kinds: shared.kinds, storage, hub, apiKeys, rateLimiter: shared.rateLimiter, health: shared.health, log },
    shared.signer,
    { health: shared.health, metrics: shared.metrics },
  );
  const server = createServer(yoga);
  const ws = attachWebSocket(server, yoga, {
    apiKeys,
    maxSubscriptions: config.graphql.maxSubscriptionsPerSocket,
    keepAliveMs: config.graphql.keepAliveMs,
    log,
  });
  await listen(server, config.http.port, config.http.host);
  return {
    url: `http://${config.http.host}:${(server.address() as AddressInfo).port}`,
    yoga,
    subscriptions: () => hub.size,
    async close() {
      // No new connections; open subscriptions are completed, then the sockets close.
      await ws.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      hub.dispose();
    },
  };
}
