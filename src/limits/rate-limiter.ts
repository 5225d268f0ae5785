import net from 'node:net';
import type { DataSource } from 'typeorm';
import { queryRows } from '../db/sql.js';
import { KilnError } from '../errors.js';

export interface RateLimitSettings {
  /** Tokens added per minute; 0 turns limiting off. */
  perMinute: number;
  /** The bucket's size: what a client may spend at once after a quiet spell. */
  burst: number;
  /** Clients never limited: IP addresses, or `loopback`. */
  allow: string[];
}

/**
 * Token buckets per client, kept in Postgres so that every API process draws on the same
 * bucket. Taking tokens is one conditional upsert: concurrent requests cannot both spend the
 * last token.
 */
export class RateLimiter {
  private readonly perSecond: number;

  constructor(
    private readonly ds: DataSource,
    private readonly settings: RateLimitSettings,
    private readonly onRefusal: () => void = () => {},
  ) {
    this.perSecond = settings.perMinute / 60;
  }

  /** Spends `cost` tokens of `client`'s bucket, or throws RATE_LIMITED saying when to retry. */
  async take(client: { key: string; ip: string | undefined }, cost: number): Promise<void> {
    if (this.settings.perMinute <= 0 || this.allowed(client.ip)) return;
    if (cost > this.settings.burst) {
      this.onRefusal();
      throw new KilnError('RATE_LIMITED', `at most ${this.settings.burst} jobs may be submitted at once`, {
        retryAfterSeconds: 60,
        http: { status: 429, headers: { 'Retry-After': '60' } },
      });
    }
    const refill = `LEAST($2::float8, b.tokens + extract(epoch FROM now() - b.updated_at) * $3::float8)`;
    const [granted] = await queryRows(
      this.ds,
      `INSERT INTO rate_limit_buckets AS b (key, tokens, updated_at) VALUES ($1, $2::float8 - $4::float8, now())
       ON CONFLICT (key) DO UPDATE SET tokens = ${refill} - $4::float8, updated_at = now()
       WHERE ${refill} >= $4::float8
       RETURNING tokens`,
      [client.key, this.settings.burst, this.perSecond, cost],
    );
    if (granted) return;
    const [bucket] = await this.ds.query(
      `SELECT LEAST($2::float8, tokens + extract(epoch FROM now() - updated_at) * $3::float8) AS tokens FROM rate_limit_buckets WHERE key = $1`,
      [client.key, this.settings.burst, this.perSecond],
    );
    const retryAfterSeconds = Math.max(1, Math.ceil((cost - (bucket?.tokens ?? 0)) / this.perSecond));
    this.onRefusal();
    throw new KilnError('RATE_LIMITED', `too many jobs submitted; try again in ${retryAfterSeconds} s`, {
      retryAfterSeconds,
      // GraphQL over HTTP answers this error with 429 and Retry-After.
      http: { status: 429, headers: { 'Retry-After': String(retryAfterSeconds) } },
    });
  }

  /** Buckets idle long enough to be full again say nothing: drop them. */
  async prune(): Promise<void> {
    const fullAfterSeconds = Math.ceil(this.settings.burst / Math.max(this.perSecond, 1e-9)) + 60;
    await this.ds.query(`DELETE FROM rate_limit_buckets WHERE updated_at < now() - make_interval(secs => $1)`, [fullAfterSeconds]);
  }

  private allowed(ip: string | undefined): boolean {
    if (!ip) return false;
    const address = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
    return this.settings.allow.some((a) => (a === 'loopback' ? isLoopback(address) : a === address));
  }
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || (net.isIPv4(ip) && ip.startsWith('127.'));
}
