import { Readable } from 'node:stream';
import type { Plugin } from 'graphql-yoga';
import { assertKey, contentTypeOf, type Storage, StorageKeyError } from '../storage/storage.js';
import { downloadScope, type UrlSigner } from '../storage/url-signer.js';

/**
 * Serves `/files/<key>` for signed links made by the local storage driver: anyone holding a
 * link may GET the file until it expires, with no other credential.
 */
export function useSignedFiles(storage: Storage, signer: UrlSigner): Plugin {
  return {
    async onRequest({ url, request, endResponse, fetchAPI }) {
      if (!url.pathname.startsWith('/files/')) return;
      const reply = (status: number, text: string) =>
        endResponse(new fetchAPI.Response(text, { status, headers: { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' } }));
      if (request.method !== 'GET' && request.method !== 'HEAD') return reply(405, 'method not allowed');
      let key: string;
      try {
        key = assertKey(url.pathname.slice('/files/'.length).split('/').map(decodeURIComponent).join('/'));
      } catch (err) {
        if (err instanceof StorageKeyError || err instanceof URIError) return reply(404, 'not found');
        throw err;
      }
      const download = url.searchParams.get('download') ?? undefined;
      const expires = Number(url.searchParams.get('expires'));
      if (!signer.verify(key, downloadScope(download), { expires, sig: url.searchParams.get('sig') ?? '' })) {
        return reply(403, 'this link is invalid or has expired');
      }
      const stat = await storage.stat(key);
      if (!stat) return reply(404, 'not found');
      const headers: Record<string, string> = {
        'content-type': download ? 'application/octet-stream' : contentTypeOf(key),
        'content-length': String(stat.size),
        'x-content-type-options': 'nosniff',
        'cache-control': `private, max-age=${Math.max(0, Math.floor(expires - Date.now() / 1000))}`,
        ...(download ? { 'content-disposition': `attachment; filename="${download.replace(/[^\w.-]/g, '_')}"` } : {}),
      };
      if (request.method === 'HEAD') return endResponse(new fetchAPI.Response(null, { headers }));
      const body = Readable.toWeb(await storage.read(key)) as ReadableStream;
      endResponse(new fetchAPI.Response(body, { headers }));
    },
  };
}
