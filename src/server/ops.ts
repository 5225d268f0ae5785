import { createServer, type Server } from 'node:http';
import type { Plugin } from 'graphql-yoga';
import type { Health } from '../health/health.js';
import type { Metrics } from '../metrics/metrics.js';

export interface Ops {
  health: Health;
  metrics: Metrics;
}

interface OpsReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const json = (status: number, body: unknown): OpsReply => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
  body: JSON.stringify(body),
});

/**
 * The operator's endpoints, the same in every role: `/health` (every check; 503 when one is
 * unhealthy), `/health/live` (the process answers), `/health/ready` (database reachable and
 * migrated; 503 otherwise) and `/metrics` (Prometheus text).
 */
export async function opsReply(pathname: string, ops: Ops): Promise<OpsReply | undefined> {
  switch (pathname) {
    case '/health': {
      const report = await ops.health.report();
      return json(report.status === 'unhealthy' ? 503 : 200, report);
    }
    case '/health/live':
      return json(200, { status: 'live' });
    case '/health/ready': {
      const { ready, reason } = await ops.health.ready();
      return json(ready ? 200 : 503, ready ? { status: 'ready' } : { status: 'not ready', reason });
    }
    case '/metrics':
      return { status: 200, headers: { 'content-type': ops.metrics.registry.contentType }, body: await ops.metrics.registry.metrics() };
    default:
      return undefined;
  }
}

/** The endpoints inside the API's yoga app. */
export function useOps(ops: Ops): Plugin {
  return {
    async onRequest({ url, request, endResponse, fetchAPI }) {
      if (request.method !== 'GET') return;
      const reply = await opsReply(url.pathname, ops);
      if (reply) endResponse(new fetchAPI.Response(reply.body, { status: reply.status, headers: reply.headers }));
    },
  };
}

/** The endpoints alone, for a worker-only process. */
export function createOpsServer(ops: Ops): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    void (async () => {
      const reply = req.method === 'GET' ? await opsReply(url.pathname, ops) : undefined;
      const r = reply ?? json(404, { error: 'not found' });
      res.writeHead(r.status, r.headers).end(r.body);
    })().catch((err) => {
      res.writeHead(500).end(String(err));
    });
  });
}
