import { JobFailure } from '../../errors.js';

export interface HttpOptions {
  /** Stops the request and its body (cancel, a lost lease, shutdown). */
  signal: AbortSignal;
  /** A request silent this long (no headers, then no bytes) fails. */
  timeoutMs: number;
  /** Sent as a bearer token to this origin alone, never to the hosts it redirects to. */
  auth?: { origin: string; token: string };
  /** Plain http:// is followed (a mirror on a private network); otherwise https:// only. */
  allowHttp: boolean;
}

export interface Answer {
  response: Response;
  /** The headers of the first answer: the hub's own, before it sends the client on to its file host. */
  first: Headers;
  /** Restarts the silence timer; call it as bytes arrive. */
  alive(): void;
  /** Stops the timer once the body is read or dropped. */
  done(): void;
  /** What an error while reading the body means, as the failure to throw. */
  failure(err: unknown, what: string): unknown;
}

const MAX_REDIRECTS = 10;

/** A URL as messages may name it: without its query, which can hold a signature. */
export const shown = (url: URL) => `${url.origin}${url.pathname}`;

/**
 * GETs `url`, following redirects itself: the token goes only to its own origin (the hub's
 * redirects to its file host carry signed URLs and must not carry it), and a redirect from
 * https:// down to http:// is refused unless plain http is allowed. Network errors and silence
 * are retryable failures; the caller reads the status.
 */
export async function httpGet(url: URL, headers: Record<string, string>, opts: HttpOptions): Promise<Answer> {
  const watchdog = new AbortController();
  const signal = AbortSignal.any([opts.signal, watchdog.signal]);
  let timer: NodeJS.Timeout | undefined;
  const alive = () => {
    clearTimeout(timer);
    timer = setTimeout(() => watchdog.abort(), opts.timeoutMs);
  };
  const done = () => clearTimeout(timer);
  const failure = (err: unknown, what: string): unknown => {
    done();
    if (opts.signal.aborted) return opts.signal.reason;
    if (err instanceof JobFailure) return err;
    if (watchdog.signal.aborted) return new JobFailure('DOWNLOAD_TIMEOUT', `${what}: nothing arrived for ${opts.timeoutMs / 1000} s (KILN_INSTALL_TIMEOUT_S)`, true);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return new JobFailure('DOWNLOAD_FAILED', `${what}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, true, { cause: err });
  };

  alive();
  let first: Headers | undefined;
  try {
    for (let hop = 0; ; hop++) {
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && opts.allowHttp)) {
        throw new JobFailure('SOURCE_REFUSED', `${shown(url)}: only https:// is fetched (KILN_INSTALL_ALLOW_HTTP allows http:// on a private network)`, false);
      }
      const auth: Record<string, string> = opts.auth && url.origin === opts.auth.origin ? { authorization: `Bearer ${opts.auth.token}` } : {};
      const response = await fetch(url, { headers: { ...headers, ...auth }, redirect: 'manual', signal });
      first ??= response.headers;
      const location = response.headers.get('location');
      if (response.status < 300 || response.status > 399 || !location) {
        alive();
        return { response, first, alive, done, failure };
      }
      await response.body?.cancel();
      if (hop === MAX_REDIRECTS) throw new JobFailure('DOWNLOAD_FAILED', `${shown(url)}: more than ${MAX_REDIRECTS} redirects`, false);
      url = new URL(location, url);
    }
  } catch (err) {
    throw failure(err, shown(url));
  }
}

/** What an HTTP status that is not the answer hoped for means, for an install of `what`. */
export function statusFailure(status: number, what: string, hint = ''): JobFailure {
  if (status === 401 || status === 403) return new JobFailure('SOURCE_UNAUTHORIZED', `${what} answered HTTP ${status}${hint}`, false);
  if (status === 404 || status === 410) return new JobFailure('SOURCE_NOT_FOUND', `${what} answered HTTP ${status}: there is no such file${hint}`, false);
  if (status === 408 || status === 429 || status >= 500) return new JobFailure('SOURCE_UNAVAILABLE', `${what} answered HTTP ${status}; trying again later may work`, true);
  return new JobFailure('DOWNLOAD_FAILED', `${what} answered HTTP ${status}`, false);
}
