import { Transform } from 'node:stream';
import type { Plugin } from 'graphql-yoga';
import { assertKey, type Storage, StorageKeyError } from '../storage/storage.js';
import { type UrlSigner, uploadScope } from '../storage/url-signer.js';
import { readableOf } from '../storage/web-stream.js';

class SizeMismatch extends Error {}

/**
 * Receives direct uploads for the local storage driver: `PUT /uploads/<key>` with a link signed
 * for that key and exactly that many bytes (what `Storage.uploadUrl` hands out). The body
 * streams to disk; a body of any other size is refused and leaves nothing.
 */
export function useSignedUploads(storage: Storage, signer: UrlSigner): Plugin {
  return {
    async onRequest({ url, request, endResponse, fetchAPI }) {
      if (!url.pathname.startsWith('/uploads/')) return;
      const reply = (status: number, text: string) =>
        endResponse(new fetchAPI.Response(text, { status, headers: { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' } }));
      if (request.method !== 'PUT') return reply(405, 'method not allowed');
      let key: string;
      try {
        key = assertKey(url.pathname.slice('/uploads/'.length).split('/').map(decodeURIComponent).join('/'));
      } catch (err) {
        if (err instanceof StorageKeyError || err instanceof URIError) return reply(404, 'not found');
        throw err;
      }
      const size = Number(url.searchParams.get('size'));
      const signature = { expires: Number(url.searchParams.get('expires')), sig: url.searchParams.get('sig') ?? '' };
      if (!Number.isSafeInteger(size) || !signer.verify(key, uploadScope(size), signature)) return reply(403, 'this upload link is invalid or has expired');
      const declared = request.headers.get('content-length');
      if (declared !== null && Number(declared) !== size) return reply(400, `this link takes exactly ${size} bytes`);
      if (!request.body) return reply(400, `this link takes exactly ${size} bytes`);
      let received = 0;
      const counted = readableOf(request.body).pipe(
        new Transform({
          transform(chunk: Buffer, _encoding, done) {
            received += chunk.length;
            done(received > size ? new SizeMismatch() : null, chunk);
          },
          flush(done) {
            done(received === size ? null : new SizeMismatch());
          },
        }),
      );
      try {
        await storage.put(key, counted);
      } catch (err) {
        if (err instanceof SizeMismatch) return reply(400, `this link takes exactly ${size} bytes`);
        throw err;
      }
      return endResponse(new fetchAPI.Response(null, { status: 200 }));
    },
  };
}
