import dns from 'node:dns';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressPolicy } from './address-policy.js';

/** How much of a response body is read (and kept in the delivery log); the rest is dropped. */
export const RESPONSE_LIMIT_BYTES = 4096;

export interface PostResult {
  /** Absent when no response came. */
  statusCode?: number;
  headers?: IncomingHttpHeaders;
  /** The start of the response body, as text. */
  body?: string;
  /** Why no response came: a timeout, a refused address, a connection error. */
  error?: string;
  /** The address was refused by the policy: trying again will not help. */
  refused?: boolean;
  durationMs: number;
}

class RefusedAddress extends Error {}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/**
 * POSTs one delivery and reads at most RESPONSE_LIMIT_BYTES of the answer, within `timeoutMs`
 * from start to end. The host name is resolved here, at delivery time, and only addresses the
 * policy allows are connected to (the check and the connection use the same lookup, so a name
 * cannot resolve one way for the check and another for the connection). Redirects are answers
 * like any other: never followed.
 */
export class WebhookPoster {
  private readonly agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 32 }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 32 }),
  };

  constructor(
    private readonly policy: AddressPolicy,
    private readonly timeoutMs: number,
  ) {}

  post(url: URL, headers: Record<string, string>, body: string): Promise<PostResult> {
    const started = performance.now();
    const done = (r: Omit<PostResult, 'durationMs'>): PostResult => ({ ...r, durationMs: performance.now() - started });
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // Literal addresses are connected to without a lookup: they are judged here.
    const literal = net.isIP(host) ? this.policy.refusal(host, host) : undefined;
    if (literal) return Promise.resolve(done({ error: `refused: ${literal}`, refused: true }));

    return new Promise((resolve) => {
      let settled = false;
      const finish = (r: Omit<PostResult, 'durationMs'>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(done(r));
      };
      const agent = this.agents[url.protocol as 'http:' | 'https:'];
      const request = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        agent,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => this.lookup(hostname, options, callback),
      });
      const timer = setTimeout(() => {
        request.destroy();
        finish({ error: `timed out after ${this.timeoutMs} ms` });
      }, this.timeoutMs);
      request.on('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof RefusedAddress) finish({ error: `refused: ${err.message}`, refused: true });
        else finish({ error: err.code ? `${err.code}: ${err.message}` : err.message });
      });
      request.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const answer = () => {
          finish({ statusCode: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).subarray(0, RESPONSE_LIMIT_BYTES).toString('utf8') });
          if (!res.complete) res.destroy();
        };
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
          if (size >= RESPONSE_LIMIT_BYTES) answer();
        });
        res.on('end', answer);
        // A body cut off after the status line still answered.
        res.on('error', answer);
      });
      request.end(body);
    });
  }

  /** Lets go of kept-alive connections. */
  close(): void {
    this.agents['http:'].destroy();
    this.agents['https:'].destroy();
  }

  private lookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback) {
    dns.lookup(hostname, { family: options.family ?? 0, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const allowed = addresses.filter((a) => !this.policy.refusal(hostname, a.address));
      if (!allowed.length) return callback(new RefusedAddress(`${hostname} resolves to ${addresses.map((a) => this.policy.refusal(hostname, a.address)).join('; ')}`), []);
      if (options.all) callback(null, allowed);
      else callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  }
}
