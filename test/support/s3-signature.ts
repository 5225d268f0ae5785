/**
 * Checks presigned (query-string) SigV4 signatures the way S3 does, written from AWS's
 * specification without the SDK. s3rver checks that such a URL has not expired but accepts any
 * signature, so a test that must prove that a URL cannot be altered (another key, another
 * download name, another upload size) puts this check in front of it with `startS3Proxy`.
 */
import crypto from 'node:crypto';
import type { ProxiedRequest } from './s3-proxy.js';

/** Why the request's presigned signature is invalid, or undefined when it is valid. Expiry is left to the server. */
export function presignedSignatureError(request: ProxiedRequest, secrets: Record<string, string>): string | undefined {
  const q = request.query;
  const [algorithm, credential, amzDate, signedHeaders, signature] = [
    'X-Amz-Algorithm',
    'X-Amz-Credential',
    'X-Amz-Date',
    'X-Amz-SignedHeaders',
    'X-Amz-Signature',
  ].map((name) => q.get(name));
  if (algorithm !== 'AWS4-HMAC-SHA256' || !credential || !amzDate || !signedHeaders || !signature) {
    return 'incomplete query-string authentication';
  }
  const [accessKeyId = '', day = '', region = '', service = '', terminator] = credential.split('/');
  const secret = secrets[accessKeyId];
  if (!secret) return `unknown access key ${accessKeyId}`;
  if (terminator !== 'aws4_request' || !amzDate.startsWith(day)) return 'malformed credential scope';
  const names = signedHeaders.split(';');
  if (!names.includes('host')) return 'host is not signed';
  const missing = names.find((name) => request.headers[name] === undefined);
  if (missing) return `signed header ${missing} was not sent`;

  const canonicalQuery = [...q.entries()]
    .filter(([name]) => name !== 'X-Amz-Signature')
    .map(([name, value]) => [uriEncode(name), uriEncode(value)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  const canonicalHeaders = names.map((name) => `${name}:${String(request.headers[name]).trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [
    request.method,
    request.url.split('?')[0],
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    'UNSIGNED-PAYLOAD',
  ].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const signingKey = [day, region, service, 'aws4_request'].reduce<Buffer>((key, part) => hmac(key, part), Buffer.from(`AWS4${secret}`));
  const expected = hmac(signingKey, stringToSign).toString('hex');
  return expected.length === signature.length && crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(signature))
    ? undefined
    : 'signature does not match';
}

const hmac = (key: Buffer, data: string) => crypto.createHmac('sha256', key).update(data).digest();
const sha256 = (data: string) => crypto.createHash('sha256').update(data).digest('hex');
const uriEncode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
