import crypto from 'node:crypto';

export interface Signature {
  /** Unix seconds after which the link no longer works. */
  expires: number;
  sig: string;
}

/**
 * HMAC-signed, expiring links to what the API serves. A signature covers the storage key, the
 * expiry and a scope saying what the link allows (`''` to read, `download:<name>` to read as an
 * attachment, `upload:<bytes>` to write that many bytes), so no part can be changed.
 */
export class UrlSigner {
  constructor(
    private readonly secret: string,
    readonly ttlSeconds: number,
  ) {}

  /**
   * Read links expire on a grid of a tenth of their lifetime, so asking twice in a row gives the
   * same URL and browser caches stay useful.
   */
  sign(key: string, scope = '', ttlSeconds = this.ttlSeconds, now = Date.now()): Signature {
    const bucket = Math.max(1, Math.floor(ttlSeconds / 10));
    const expires = Math.ceil((now / 1000 + ttlSeconds) / bucket) * bucket;
    return { expires, sig: this.mac(key, scope, expires) };
  }

  /** True when the signature matches key, scope and expiry, and has not expired. */
  verify(key: string, scope: string, { expires, sig }: Signature, now = Date.now()): boolean {
    if (!Number.isFinite(expires) || expires * 1000 < now) return false;
    const expected = Buffer.from(this.mac(key, scope, expires));
    const given = Buffer.from(sig);
    return expected.length === given.length && crypto.timingSafeEqual(expected, given);
  }

  private mac(key: string, scope: string, expires: number) {
    return crypto.createHmac('sha256', this.secret).update(`${key}\n${scope}\n${expires}`).digest('base64url');
  }
}

export const downloadScope = (name: string | undefined) => (name ? `download:${name}` : '');
export const uploadScope = (sizeBytes: number) => `upload:${sizeBytes}`;
