import type { PostResult } from './http-post.js';

export interface RetrySettings {
  /** Delay before the first retry; each later one doubles, up to `maxRetryDelayMs`. */
  retryDelayMs: number;
  maxRetryDelayMs: number;
}

/** What one attempt's result means for the delivery. */
export type Verdict = { outcome: 'delivered' } | { outcome: 'retry'; delayMs: number; error: string } | { outcome: 'failed'; error: string };

/** The attempt's result in a few words, for the log and for a disabled webhook's reason. */
export const describeResult = (r: PostResult): string => (r.statusCode !== undefined ? `HTTP ${r.statusCode}` : (r.error ?? 'no response'));

/**
 * 2xx is delivered. Timeouts, connection errors, 408, 429 and 5xx are retried, with exponential
 * backoff and ±20 % jitter (so each delay still exceeds the one before), or after the
 * Retry-After a 429 or 503 asks for. Anything else (another 4xx, a redirect, a refused address)
 * will not change by trying again: the delivery stops.
 */
export function judge(r: PostResult, attempt: number, s: RetrySettings, random: () => number = Math.random): Verdict {
  const code = r.statusCode;
  if (code !== undefined && code >= 200 && code < 300) return { outcome: 'delivered' };
  const error = describeResult(r);
  if (r.refused) return { outcome: 'failed', error };
  if (code !== undefined && code < 500 && code !== 408 && code !== 429) {
    return { outcome: 'failed', error: code >= 300 && code < 400 ? `${error} (redirects are not followed)` : error };
  }
  const asked = code === 429 || code === 503 ? retryAfterMs(r.headers?.['retry-after']) : undefined;
  const backoff = Math.min(s.maxRetryDelayMs, s.retryDelayMs * 2 ** (attempt - 1)) * (0.8 + 0.4 * random());
  return { outcome: 'retry', delayMs: Math.round(asked ?? backoff), error };
}

/** Retry-After as seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
