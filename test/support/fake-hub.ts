/**
 * A Hugging Face hub for tests, on loopback, in the hub's URL layout, with the behaviours an
 * installer must cope with (the real hub is not reachable from CI):
 *
 * - `GET /api/models/{repo}/revision/{rev}` → `{ sha }` (the commit a branch names);
 * - `GET /api/models/{repo}/tree/{rev}[/{folder}]?recursive=true` → files with sizes, their git
 *   blob id, and for LFS files (graphs, weights) `lfs: { oid: sha256, size }`, paged three
 *   entries at a time with a `Link: <…>; rel="next"` header, as the hub pages long trees;
 * - `GET /{repo}/resolve/{rev}/{path}` → small files directly (ETag: their blob id), LFS files
 *   as a 302 to a separate file host (another origin, as the hub's CDN is) with `X-Linked-Etag`;
 * - gated repositories answer 401 without `Authorization: Bearer <token>`: to everything (private
 *   ones), or to file downloads only (public gated ones, which the hub lists to anyone);
 * - the file host serves byte ranges (206, and 416 past the end), and single files at
 *   `/dl/<name>` for URL installs; a transfer can be held part-way, then cut or let go on.
 *
 * Every request is recorded with its headers, for tests to check what was asked and sent where.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RepoFile {
  path: string;
  bytes: Uint8Array | string;
}

export interface RepoOptions {
  /** Answers 401 without this bearer token. */
  token?: string;
  /** Only its files need the token (a gated public repository: the hub lists it to anyone). */
  gatedFilesOnly?: boolean;
  /** sha256 values the tree lists instead of the real ones (a corrupted upload, a lying mirror). */
  listedSha256?: Record<string, string>;
}

export interface Served {
  host: 'hub' | 'files';
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

interface Blob {
  bytes: Buffer;
  sha256: string;
}

/** A transfer held part-way: released to go on, or cut (its connection closed). */
interface Interruption {
  afterBytes: number;
  reached: () => void;
  resumed: Promise<'release' | 'cut'>;
  closed: () => void;
}

const LFS = /\.(onnx|onnx_data|safetensors|bin|pb)$/;
const PAGE = 3;

const bytesOf = (b: Uint8Array | string) => (typeof b === 'string' ? Buffer.from(b) : Buffer.from(b));
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const gitOid = (b: Buffer) => crypto.createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

export class FakeHub {
  readonly served: Served[] = [];
  /** The most file transfers (from either host) that were open at once. */
  peakTransfers = 0;
  private openTransfers = 0;
  private repos = new Map<string, { commit: string; files: Map<string, Buffer>; options: RepoOptions }>();
  private blobs = new Map<string, Blob>();
  private singles = new Map<string, Buffer>();
  private interruptions = new Map<string, Interruption>();
  private hub!: http.Server;
  private fileHost!: http.Server;
  url = '';
  filesUrl = '';

  static async start(): Promise<FakeHub> {
    const hub = new FakeHub();
    hub.hub = http.createServer((req, res) => hub.serveHub(req, res));
    hub.fileHost = http.createServer((req, res) => hub.serveFile(req, res));
    for (const server of [hub.hub, hub.fileHost]) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    hub.url = `http://127.0.0.1:${(hub.hub.address() as AddressInfo).port}`;
    hub.filesUrl = `http://127.0.0.1:${(hub.fileHost.address() as AddressInfo).port}`;
    return hub;
  }

  addRepo(name: string, files: RepoFile[], options: RepoOptions = {}): { commit: string } {
    const commit = crypto.createHash('sha1').update(name).update(String(this.repos.size)).digest('hex');
    const map = new Map<string, Buffer>();
    for (const f of files) {
      const bytes = bytesOf(f.bytes);
      map.set(f.path, bytes);
      if (LFS.test(f.path)) this.blobs.set(sha256(bytes), { bytes, sha256: sha256(bytes) });
    }
    this.repos.set(name, { commit, files: map, options });
    return { commit };
  }

  /** A single file on the file host; returns its URL. */
  addFile(name: string, bytes: Uint8Array | string): string {
    this.singles.set(name, bytesOf(bytes));
    return `${this.filesUrl}/dl/${name}`;
  }

  /**
   * Holds the next transfer of this file (`owner/repo/path` of an LFS file, or a single file's
   * name) once it has sent `afterBytes` bytes: `release` sends the rest, `cut` closes the
   * connection there; `closed` resolves once the connection is gone, whoever closed it.
   */
  hold(path: string, afterBytes: number): { reached: Promise<void>; release(): void; cut(): void; closed: Promise<void> } {
    let reached!: () => void;
    let resume!: (how: 'release' | 'cut') => void;
    let closed!: () => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    const resumed = new Promise<'release' | 'cut'>((r) => (resume = r));
    const closedP = new Promise<void>((r) => (closed = r));
    this.interruptions.set(path, { afterBytes, reached, resumed, closed });
    return { reached: reachedP, release: () => resume('release'), cut: () => resume('cut'), closed: closedP };
  }

  /** Requests the file host got for this file (`owner/repo/path`, or a single file's name). */
  transfersOf(file: string): Served[] {
    return this.served.filter((s) => s.host === 'files' && s.path.endsWith(`#${file}`));
  }

  async stop(): Promise<void> {
    for (const server of [this.hub, this.fileHost]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }

  private record(host: Served['host'], req: http.IncomingMessage, file?: string) {
    this.served.push({ host, path: `${req.url}${file ? `#${file}` : ''}`, range: req.headers.range, authorization: req.headers.authorization });
  }

  private serveHub(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url!, this.url);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)(?:\/(.*))?$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const name = api?.[1] ?? resolve?.[1];
    const repo = name ? this.repos.get(name) : undefined;
    const file = resolve ? decodeURIComponent(resolve[3]!) : undefined;
    this.record('hub', req, file);
    if (!repo) return json(res, 401, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
    if (repo.options.token && req.headers.authorization !== `Bearer ${repo.options.token}` && (resolve || !repo.options.gatedFilesOnly)) {
      return json(res, 401, { error: 'Access to this repository is restricted' }, { 'x-error-code': 'GatedRepo' });
    }
    const revision = decodeURIComponent((api?.[3] ?? resolve?.[2])!);
    if (revision !== 'main' && revision !== repo.commit) return json(res, 404, { error: 'Revision not found' }, { 'x-error-code': 'RevisionNotFound' });

    if (api?.[2] === 'revision') return json(res, 200, { id: name, sha: repo.commit });
    if (api) {
      const folder = api[4] ? `${decodeURIComponent(api[4])}/` : '';
      const entries = [...repo.files.entries()]
        .filter(([p]) => p.startsWith(folder))
        .map(([p, bytes]) => ({
          type: 'file',
          path: p,
          size: bytes.length,
          oid: gitOid(bytes),
          ...(LFS.test(p) ? { lfs: { oid: repo.options.listedSha256?.[p] ?? sha256(bytes), size: bytes.length, pointerSize: 134 } } : {}),
        }));
      if (!entries.length) return json(res, 404, { error: 'Entry not found' }, { 'x-error-code': 'EntryNotFound' });
      const cursor = Number(url.searchParams.get('cursor') ?? 0);
      const page = entries.slice(cursor, cursor + PAGE);
      const next: Record<string, string> = cursor + PAGE < entries.length ? { link: `<${this.url}${url.pathname}?recursive=true&cursor=${cursor + PAGE}>; rel="next"` } : {};
      return json(res, 200, page, next);
    }
    const bytes = repo.files.get(file!);
    if (!bytes) return json(res, 404, { error: 'Entry not found' }, { 'x-error-code': 'EntryNotFound' });
    const commitHeader = { 'x-repo-commit': repo.commit };
    if (LFS.test(file!)) {
      // As the hub does: off to the file host, with a signed URL, and the content's sha256 beside it.
      const location = `${this.filesUrl}/blobs/${sha256(bytes)}?X-Signature=${crypto.randomBytes(8).toString('hex')}&file=${encodeURIComponent(`${name}/${file}`)}`;
      res.writeHead(302, { location, 'x-linked-etag': `"${sha256(bytes)}"`, 'x-linked-size': String(bytes.length), ...commitHeader });
      return res.end();
    }
    this.transfer(res);
    sendRange(req, res, bytes, { etag: `"${gitOid(bytes)}"`, ...commitHeader }, undefined);
  }

  private transfer(res: http.ServerResponse) {
    this.peakTransfers = Math.max(this.peakTransfers, ++this.openTransfers);
    res.once('close', () => this.openTransfers--);
  }

  private serveFile(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url!, this.filesUrl);
    const blob = /^\/blobs\/([0-9a-f]{64})$/.exec(url.pathname);
    const single = /^\/dl\/(.+)$/.exec(url.pathname);
    const name = blob ? url.searchParams.get('file')! : decodeURIComponent(single?.[1] ?? '');
    this.record('files', req, name);
    const bytes = blob ? this.blobs.get(blob[1]!)?.bytes : this.singles.get(name);
    if (!bytes) {
      res.writeHead(404);
      return res.end();
    }
    const interruption = this.interruptions.get(name);
    if (interruption) this.interruptions.delete(name);
    this.transfer(res);
    sendRange(req, res, bytes, { etag: `"${sha256(bytes).slice(0, 32)}"`, 'last-modified': new Date(0).toUTCString() }, interruption);
  }
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** The file, or the range asked for, in 64 KiB writes; an interruption stops it part-way. */
function sendRange(req: http.IncomingMessage, res: http.ServerResponse, bytes: Buffer, headers: Record<string, string>, stop: Interruption | undefined) {
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  let start = 0;
  let end = bytes.length - 1;
  if (m) {
    start = Number(m[1]);
    if (start >= bytes.length) {
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}`, ...headers });
      return res.end();
    }
    if (m[2]) end = Math.min(end, Number(m[2]));
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${bytes.length}`, 'content-length': String(end - start + 1), 'accept-ranges': 'bytes', ...headers });
  } else {
    res.writeHead(200, { 'content-length': String(bytes.length), 'accept-ranges': 'bytes', ...headers });
  }
  const body = bytes.subarray(start, end + 1);
  void (async () => {
    let sent = 0;
    const limit = stop ? Math.min(stop.afterBytes, body.length) : body.length;
    while (sent < limit) {
      const chunk = body.subarray(sent, Math.min(limit, sent + 64 * 1024));
      if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
      sent += chunk.length;
    }
    if (!stop) return res.end();
    res.once('close', () => stop.closed());
    await new Promise<void>((r) => res.write('', () => r()));
    stop.reached();
    const how = await Promise.race([stop.resumed, new Promise<'gone'>((r) => res.once('close', () => r('gone')))]);
    if (how === 'cut') res.socket?.destroy();
    else if (how === 'release') res.end(body.subarray(sent));
  })();
}
