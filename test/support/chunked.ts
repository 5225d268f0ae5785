import http from 'node:http';

export interface ChunkedReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Body bytes written before the answer came (some may still sit in socket buffers). */
  sentBytes: number;
  ms: number;
}

/**
 * POSTs a body with `Transfer-Encoding: chunked` (no Content-Length): `head`, then `fill` bytes
 * up to `totalBytes`, then `tail`, in 64 KiB chunks as fast as the socket takes them, and stops
 * sending once the server answers.
 */
export function postChunked(
  url: string,
  { headers = {}, head = '', tail = '', totalBytes }: { headers?: Record<string, string>; head?: string; tail?: string; totalBytes: number },
): Promise<ChunkedReply> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let sentBytes = 0;
    let answered = false;
    const req = http.request(url, { method: 'POST', headers, agent: false }, (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        resolve({ status: res.statusCode!, headers: res.headers, body, sentBytes, ms: performance.now() - started });
        req.destroy();
      });
      res.on('error', reject);
    });
    // Once answered, a server that closes the connection makes our unsent rest fail: expected.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const fillBytes = totalBytes - Buffer.byteLength(head) - Buffer.byteLength(tail);
    let filled = 0;
    const write = (data: Buffer | string) => {
      sentBytes += Buffer.byteLength(data);
      return req.write(data);
    };
    const pump = () => {
      while (!answered && filled < fillBytes) {
        const n = Math.min(chunk.length, fillBytes - filled);
        filled += n;
        if (!write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void req.once('drain', pump);
      }
      if (!answered) {
        write(tail);
        req.end();
      }
    };
    write(head);
    pump();
  });
}
