import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { GraphQLError } from 'graphql';

/** Who is calling: the API key's name when keys are on, and the address it came from. */
export interface ClientIdentity {
  /** Bucket and idempotency scope: `key:<name>` or `ip:<address>`. */
  key: string;
  apiKey: string | undefined;
  ip: string | undefined;
}

/**
 * API keys, compared by hash in constant time. With none configured, everyone may call; with
 * some, every GraphQL request needs `Authorization: Bearer <key>` (or, over graphql-ws,
 * `authorization` / `apiKey` in connection_init's payload).
 */
export class ApiKeys {
  private readonly hashes: [string, Buffer][];

  constructor(keys: Map<string, string>) {
    this.hashes = [...keys].map(([name, key]) => [name, digest(key)]);
  }

  get enabled(): boolean {
    return this.hashes.length > 0;
  }

  /** The key's name, or undefined when it is not one of ours. */
  nameOf(presented: string | undefined): string | undefined {
    if (!presented) return undefined;
    const d = digest(presented);
    let found: string | undefined;
    for (const [name, hash] of this.hashes) if (crypto.timingSafeEqual(hash, d)) found = name;
    return found;
  }

  /** The key a request carries, as a bearer token. */
  static fromAuthorization(header: string | null | undefined): string | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    return m?.[1];
  }
}

const digest = (key: string) => crypto.createHash('sha256').update(key).digest();

export const unauthenticated = () =>
  new GraphQLError('a valid API key is needed: send "Authorization: Bearer <key>"', {
    extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } } },
  });

/** The caller's address: the socket's, or X-Forwarded-For's first when Kiln sits behind a trusted proxy. */
export function clientAddress(req: IncomingMessage | undefined, forwardedFor: string | null | undefined, trustProxy: boolean): string | undefined {
  if (trustProxy && forwardedFor) return forwardedFor.split(',')[0]!.trim();
  return req?.socket.remoteAddress;
}
