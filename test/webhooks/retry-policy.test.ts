import { describe, expect, it } from 'vitest';
import { judge, retryAfterMs } from '../../src/webhooks/retry-policy.js';

const settings = { retryDelayMs: 1000, maxRetryDelayMs: 60_000 };
const at = (statusCode?: number, extra: object = {}) => ({ statusCode, durationMs: 5, ...extra });

describe('what an attempt means for its delivery', () => {
  it('counts any 2xx as delivered', () => {
    for (const code of [200, 201, 202, 204, 299]) expect(judge(at(code), 1, settings).outcome).toBe('delivered');
  });

  it('retries timeouts, connection errors, 408, 429 and 5xx', () => {
    for (const r of [at(408), at(429), at(500), at(503), at(599), at(undefined, { error: 'timed out after 10000 ms' }), at(undefined, { error: 'ECONNRESET: socket hang up' })]) {
      expect(judge(r, 1, settings).outcome).toBe('retry');
    }
  });

  it('stops at other 4xx, at redirects (never followed) and at refused addresses', () => {
    expect(judge(at(400), 1, settings)).toEqual({ outcome: 'failed', error: 'HTTP 400' });
    expect(judge(at(404), 1, settings)).toEqual({ outcome: 'failed', error: 'HTTP 404' });
    expect(judge(at(301), 1, settings)).toEqual({ outcome: 'failed', error: 'HTTP 301 (redirects are not followed)' });
    expect(judge(at(undefined, { error: 'refused: 10.0.0.1 is a private address', refused: true }), 1, settings)).toMatchObject({ outcome: 'failed' });
  });

  it('doubles the delay for each retry, with jitter that keeps every delay above the one before, up to the maximum', () => {
    const delay = (attempt: number, random: number) => {
      const v = judge(at(500), attempt, settings, () => random);
      return v.outcome === 'retry' ? v.delayMs : NaN;
    };
    expect([1, 2, 3, 4].map((n) => delay(n, 0.5))).toEqual([1000, 2000, 4000, 8000]);
    for (let n = 1; n < 6; n++) expect(delay(n + 1, 0)).toBeGreaterThan(delay(n, 0.999));
    expect(delay(1, 0)).toBe(800);
    expect(delay(1, 0.999)).toBeLessThanOrEqual(1200);
    expect(delay(20, 0.5)).toBe(60_000);
  });

  it('waits as long as Retry-After asks on 429 and 503, in seconds or as a date', () => {
    const v = judge(at(429, { headers: { 'retry-after': '120' } }), 1, settings);
    expect(v).toMatchObject({ outcome: 'retry', delayMs: 120_000 });
    expect(judge(at(500, { headers: { 'retry-after': '120' } }), 1, settings, () => 0.5)).toMatchObject({ delayMs: 1000 });
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(retryAfterMs('Tue, 01 Jan 2030 00:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });
});
