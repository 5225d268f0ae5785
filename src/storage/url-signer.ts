import crypto from 'node:crypto';

export interface SignedParams {
  expires: number;
  sig: string;
  download?: string;
}

/**
 * HMAC-signed, expiring links to files the API serves. Expiry times are rounded up to a tenth of
 * the TTL so that asking twice in a row gives the same URL, which keeps browser caches useful.
 */
export class UrlSigner {
  constructor(
    private readonly secret: string,
    readonly ttlSeconds: number,
  ) {}

  sign(key: string, download?: string, now = Date.now()): SignedParams {
    const bucket = Math.max(1, Math.floor(this.ttlSeconds / 10));
    const expires = Math.ceil((now / 1000 + this.ttlSeconds) / bucket) * bucket;
    return { expires, sig: this.mac(key, expires, download), ...(download ? { download } : {}) };
  }

  /** True when the signature matches and has not expired. */
  verify(key: string, params: SignedParams, now = Date.now()): boolean {
    if (!Number.isFinite(params.expires) || params.expires * 1000 < now) return false;
    const expected = Buffer.from(this.mac(key, params.expires, params.download));
    const given = Buffer.from(params.sig);
    return expected.length === given.length && crypto.timingSafeEqual(expected, given);
  }

  private mac(key: string, expires: number, download?: string) {
    return crypto.createHmac('sha256', this.secret).update(`${key}\n${expires}\n${download ?? ''}`).digest('base64url');
  }
}
