import crypto from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

/** For files whose name carries a hash of their content: a new version gets a new name. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';
/** For files served under a fixed name (index.html): kept, but checked with the server each time. */
export const REVALIDATE = 'no-cache';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

export const contentTypeFor = (name: string) => TYPES[path.extname(name).toLowerCase()] ?? 'application/octet-stream';

/** A file ready to serve: its bytes, gzipped bytes when that pays, and its validator. */
export interface StaticAsset {
  body: Uint8Array;
  gzipped: Uint8Array | undefined;
  type: string;
  etag: string;
  cacheControl: string;
}

const gzip = promisify(zlib.gzip);
const compressible = (type: string) => /^(text\/|application\/(json|manifest\+json|javascript)|image\/svg)/.test(type);

export async function makeAsset(body: Uint8Array | string, type: string, cacheControl: string): Promise<StaticAsset> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const etag = `"${crypto.createHash('sha256').update(bytes).digest('base64url').slice(0, 22)}"`;
  let gzipped: Uint8Array | undefined;
  if (compressible(type) && bytes.length > 1024) {
    const packed = await gzip(bytes, { level: 9 });
    if (packed.length < bytes.length * 0.9) gzipped = packed;
  }
  return { body: bytes, gzipped, type, etag, cacheControl };
}

/** The response for a GET or HEAD of an asset: 304 when the client's copy is current, gzip when accepted. */
export function assetResponse(fetchAPI: { Response: typeof Response }, request: Request, asset: StaticAsset): Response {
  const headers: Record<string, string> = {
    'content-type': asset.type,
    'cache-control': asset.cacheControl,
    etag: asset.etag,
    'x-content-type-options': 'nosniff',
    ...(asset.gzipped ? { vary: 'accept-encoding' } : {}),
  };
  const seen = request.headers.get('if-none-match');
  if (seen && seen.split(',').some((tag) => tag.trim().replace(/^W\//, '') === asset.etag)) {
    return new fetchAPI.Response(null, { status: 304, headers });
  }
  const useGzip = asset.gzipped !== undefined && /\bgzip\b/.test(request.headers.get('accept-encoding') ?? '');
  const body = useGzip ? asset.gzipped! : asset.body;
  if (useGzip) headers['content-encoding'] = 'gzip';
  headers['content-length'] = String(body.length);
  return new fetchAPI.Response(request.method === 'HEAD' ? null : (body as Uint8Array<ArrayBuffer>), { status: 200, headers });
}

export function notFoundResponse(fetchAPI: { Response: typeof Response }, text = 'not found', status = 404): Response {
  return new fetchAPI.Response(text, {
    status,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' },
  });
}
