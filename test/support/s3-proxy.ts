/**
 * An HTTP proxy in front of a test S3 server that records every request and can answer one
 * itself instead (an error status) or never answer it (a stall), to prove what a client sends
 * and how it copes with a failing service.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** Path and query exactly as the client sent them. */
  url: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Status the client got; undefined until answered, and for a stalled request. */
  status?: number;
}

/**
 * Pass it on (as sent, or to another path and query); answer with an S3 error; or hold the
 * connection open and never answer.
 */
export type ProxyAnswer = 'pass' | { forward: string } | 'stall' | { status: number; code: string; message?: string };

export interface S3Proxy {
  endpoint: string;
  requests: ProxiedRequest[];
  stop(): Promise<void>;
}

export async function startS3Proxy(
  target: string,
  answer: (request: ProxiedRequest, index: number) => ProxyAnswer = () => 'pass',
): Promise<S3Proxy> {
  const requests: ProxiedRequest[] = [];
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const request: ProxiedRequest = {
      method: req.method ?? 'GET',
      url,
      query: new URL(url, 'http://proxy').searchParams,
      headers: req.headers,
    };
    requests.push(request);
    res.on('finish', () => (request.status = res.statusCode));
    const decision = answer(request, requests.length - 1);
    if (decision === 'stall') {
      req.resume();
      return;
    }
    if (typeof decision === 'object' && 'status' in decision) {
      req.resume();
      const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${decision.code}</Code><Message>${decision.message ?? decision.code}</Message></Error>`;
      res.writeHead(decision.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const forward = typeof decision === 'object' ? decision.forward : url;
    const upstream = http.request(new URL(forward, target), { method: req.method, headers: req.headers, agent }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    async stop() {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
}
