import type { IncomingMessage } from 'node:http';
import { CloseCode, handleProtocols, makeServer, type ServerOptions } from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../log.js';

/** What each operation's context carries of its socket (as graphql-ws/use/ws gives it). */
export interface SocketExtra {
  socket: WebSocket;
  request: IncomingMessage;
}

/** Bytes a socket may hold unsent before its operations wait for it to take them. */
const HIGH_WATER_BYTES = 256 * 1024;

/**
 * graphql-ws's protocol server on `ws` sockets: what graphql-ws/use/ws does, but a message is
 * handed to the socket without a promise and a write callback each, unless the socket has fallen
 * behind (more than HIGH_WATER_BYTES buffered): then the operation waits until that message is
 * written, so a slow reader holds its own stream back rather than the process's memory. With a
 * thousand subscribers to one job that is a thousand promises and callbacks saved per event.
 * Pings every `keepAliveMs`; a socket that does not answer one in as long is dropped.
 */
export function serveGraphqlWs<E extends Record<PropertyKey, unknown>>(
  options: ServerOptions<Record<string, unknown>, E & SocketExtra>,
  wss: WebSocketServer,
  keepAliveMs: number,
  log: Logger,
) {
  const server = makeServer(options);
  wss.options.handleProtocols = handleProtocols;
  wss.on('connection', (socket, request) => {
    socket.once('error', (err) => {
      log.warn({ err }, 'WebSocket error; closing it');
      socket.close(CloseCode.InternalServerError, 'Internal server error');
    });
    let pongWait: NodeJS.Timeout | undefined;
    const pings =
      keepAliveMs > 0
        ? setInterval(() => {
            if (socket.readyState !== socket.OPEN) return;
            pongWait ??= setTimeout(() => socket.terminate(), keepAliveMs);
            socket.ping();
          }, keepAliveMs)
        : undefined;
    socket.on('pong', () => {
      clearTimeout(pongWait);
      pongWait = undefined;
    });
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) => {
          if (socket.readyState !== socket.OPEN) return;
          if (socket.bufferedAmount < HIGH_WATER_BYTES) return socket.send(data);
          return new Promise<void>((resolve, reject) => socket.send(data, (err) => (err ? reject(err) : resolve())));
        },
        close: (code, reason) => socket.close(code, reason),
        onMessage: (cb) =>
          socket.on('message', (data) => {
            // A failure in the server's own handling closes this socket alone (graphql-ws answers protocol errors itself).
            cb(String(data)).catch((err: unknown) => {
              log.error({ err }, 'graphql-ws could not handle a message; closing its socket');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          }),
      },
      { socket, request } as E & SocketExtra,
    );
    socket.once('close', (code, reason) => {
      clearTimeout(pongWait);
      clearInterval(pings);
      void closed(code, String(reason));
    });
  });
  return {
    async dispose() {
      for (const client of wss.clients) client.close(1001, 'Going away');
    },
  };
}
