import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the receiver saw it. */
export interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  json: any;
  /** Date.now() when it arrived. */
  at: number;
  /** The status it was answered with. */
  status: number;
}

/** How to answer: a status, headers and a body, after `delayMs` when given. */
export type Answer = { status: number; headers?: Record<string, string>; body?: string; delayMs?: number };

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** How the next requests are answered: by their number (0 for the first) or by the request. */
  answer: (r: Omit<Received, 'status'>, n: number) => Answer;
  /** Resolves once `count` requests that match have arrived. */
  waitFor(match: (r: Received) => boolean, count?: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/** A real HTTP server standing in for an app that receives Kiln's webhooks. */
export async function startReceiver(port = 0): Promise<Receiver> {
  const waiters = new Set<() => void>();
  const receiver: Receiver = {
    url: '',
    port: 0,
    received: [],
    answer: () => ({ status: 200 }),
    waitFor(match, count = 1, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = receiver.received.filter(match);
          if (found.length >= count) {
            cleanup();
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${receiver.received.filter(match).length} of ${count} matching webhook requests within ${timeoutMs} ms (${receiver.received.length} in all)`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server = http.createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const seen = {
      id: String(req.headers['webhook-id']),
      timestamp: String(req.headers['webhook-timestamp']),
      signature: String(req.headers['webhook-signature']),
      body,
      json: JSON.parse(body),
      at: Date.now(),
    };
    const answer = receiver.answer(seen, receiver.received.length);
    receiver.received.push({ ...seen, status: answer.status });
    waiters.forEach((w) => w());
    if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
    if (!res.destroyed) res.writeHead(answer.status, answer.headers).end(answer.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}/hooks/kiln`;
  return receiver;
}

/**
 * Verifies a delivery as the README tells receivers to: the HMAC-SHA256 of `id.timestamp.body`
 * with the secret's bytes must be one of the `v1,` signatures, and the timestamp recent.
 */
export function verify(secret: string, r: Pick<Received, 'id' | 'timestamp' | 'signature' | 'body'>): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = crypto.createHmac('sha256', key).update(`${r.id}.${r.timestamp}.${r.body}`).digest('base64');
  const recent = Math.abs(Date.now() / 1000 - Number(r.timestamp)) < 300;
  return recent && r.signature.split(' ').some((s) => s.startsWith('v1,') && s.slice(3).length === expected.length && crypto.timingSafeEqual(Buffer.from(s.slice(3)), Buffer.from(expected)));
}

/** Polls `read` until `done` holds (for rows other processes write; events are waited for, not polled). */
export async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
