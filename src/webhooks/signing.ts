import crypto from 'node:crypto';
import type { SigningSecret } from '../db/entities/webhook-endpoint.js';

/** A new secret in the Standard Webhooks form: `whsec_` and the base64 of 32 random bytes. */
export const newSecret = (): string => `whsec_${crypto.randomBytes(32).toString('base64')}`;

/** The secrets that sign now: the current one, and the one it replaced until that one expires. */
export function signingSecrets(s: SigningSecret, now = new Date()): string[] {
  return s.previousSecret && s.previousSecretExpiresAt && s.previousSecretExpiresAt > now ? [s.secret, s.previousSecret] : [s.secret];
}

/**
 * The `webhook-signature` header of Standard Webhooks: for each secret, `v1,` and the base64
 * HMAC-SHA256 of `id.timestamp.body` keyed with the secret's bytes, separated by spaces.
 */
export function signatureHeader(secrets: string[], id: string, timestamp: number, body: string): string {
  return secrets
    .map((secret) => `v1,${crypto.createHmac('sha256', Buffer.from(secret.replace(/^whsec_/, ''), 'base64')).update(`${id}.${timestamp}.${body}`).digest('base64')}`)
    .join(' ');
}
