import { Readable } from 'node:stream';

/**
 * A Node stream over a WHATWG one. yoga's bodies and files are streams of whatwg-node's own
 * implementation, which Readable.fromWeb does not take.
 */
export function readableOf(body: ReadableStream<Uint8Array>): Readable {
  return Readable.from(chunks(body));
}

async function* chunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}
