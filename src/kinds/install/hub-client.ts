import { z } from 'zod';
import { JobFailure } from '../../errors.js';
import { type HttpOptions, httpGet, statusFailure } from './http-get.js';

/** One file of a hub repository, as its tree lists it. */
export interface HubFile {
  /** From the model's folder (the repository's root, or the subfolder asked for). */
  path: string;
  size: number;
  /** The sha256 of an LFS file's content (weights, graphs); null for small files kept in git. */
  sha256: string | null;
  /** The git blob id (sha1 of `blob <size>\0<bytes>`), which checks the small files. */
  gitOid: string | null;
}

const treeEntry = z.object({
  type: z.string(),
  path: z.string(),
  size: z.number().int().nonnegative().optional(),
  oid: z.string().optional(),
  lfs: z.object({ oid: z.string(), size: z.number().int().nonnegative() }).optional(),
});

/** Most files one repository listing may hold. */
const MAX_FILES = 20_000;

/**
 * The few calls of the Hugging Face hub's API an install makes (the same ones its own clients
 * make, so mirrors and proxies of it answer them): the commit a revision names, the tree of files
 * with their sizes and hashes at that commit, and each file's download URL. Everything is read
 * at one commit, so a branch that moves during an install (or between its attempts) cannot mix
 * two versions of a model.
 */
export class HubClient {
  private readonly http: HttpOptions;

  constructor(
    private readonly endpoint: string,
    token: string | undefined,
    http: Omit<HttpOptions, 'auth'>,
  ) {
    this.http = { ...http, ...(token ? { auth: { origin: new URL(endpoint).origin, token } } : {}) };
  }

  /** Options for downloading the repository's files: the token goes to the hub alone. */
  get downloads(): HttpOptions {
    return this.http;
  }

  async commitOf(repo: string, revision: string): Promise<string> {
    const { body } = await this.page(`/api/models/${repo}/revision/${encodeURIComponent(revision)}`, repo, revision);
    const sha = z.object({ sha: z.string().regex(/^[0-9a-f]{40}$/) }).safeParse(body);
    if (!sha.success) throw new JobFailure('SOURCE_INVALID', `the hub's answer for ${repo}@${revision} names no commit`, false);
    return sha.data.sha;
  }

  /** Every file under `subfolder` (or the whole repository), recursively, with paths from there. */
  async listFiles(repo: string, commit: string, subfolder: string | null): Promise<HubFile[]> {
    const files: HubFile[] = [];
    let next: string | undefined = `/api/models/${repo}/tree/${commit}${subfolder ? `/${subfolder}` : ''}?recursive=true`;
    while (next) {
      const { body, link } = await this.page(next, repo, commit);
      const entries = z.array(treeEntry).safeParse(body);
      if (!entries.success) throw new JobFailure('SOURCE_INVALID', `the hub's file list of ${repo} is not one Kiln can read`, false);
      for (const e of entries.data) {
        if (e.type !== 'file' || (subfolder && !e.path.startsWith(`${subfolder}/`))) continue;
        files.push({ path: subfolder ? e.path.slice(subfolder.length + 1) : e.path, size: e.lfs?.size ?? e.size ?? 0, sha256: e.lfs?.oid ?? null, gitOid: e.lfs ? null : (e.oid ?? null) });
      }
      if (files.length > MAX_FILES) throw new JobFailure('SOURCE_INVALID', `${repo} holds more than ${MAX_FILES} files; name the model's subfolder`, false);
      next = link;
    }
    if (!files.length) throw new JobFailure('SOURCE_NOT_FOUND', `${repo}${subfolder ? ` has no files under ${subfolder}/` : ' has no files'}`, false);
    return files;
  }

  fileUrl(repo: string, commit: string, file: string, subfolder: string | null): URL {
    const full = subfolder ? `${subfolder}/${file}` : file;
    return new URL(`${this.endpoint}/${repo}/resolve/${commit}/${full.split('/').map(encodeURIComponent).join('/')}`);
  }

  /** One page of an API answer, and the next page's path (the hub pages long trees with a Link header). */
  private async page(apiPath: string, repo: string, revision: string): Promise<{ body: unknown; link: string | undefined }> {
    const url = new URL(apiPath, this.endpoint);
    const answer = await httpGet(url, { accept: 'application/json' }, this.http);
    try {
      const { response } = answer;
      if (!response.ok) {
        await response.body?.cancel();
        throw this.refusal(response, repo, revision);
      }
      const body: unknown = await response.json();
      const next = /<([^>]+)>;\s*rel="next"/.exec(response.headers.get('link') ?? '')?.[1];
      const nextUrl = next ? new URL(next, url) : undefined;
      // A next page elsewhere would be sent the token: only the hub's own are followed.
      return { body, link: nextUrl?.origin === url.origin ? nextUrl.pathname + nextUrl.search : undefined };
    } catch (err) {
      throw answer.failure(err, `the hub's answer for ${repo}`);
    } finally {
      answer.done();
    }
  }

  /** What a 401 or 403 from the hub means, given whether a token was sent. */
  get refusedHint(): string {
    return this.http.auth
      ? ': the token in KILN_HF_TOKEN may not read it (a gated repository needs its terms accepted on the hub by the token\'s account)'
      : ': it is gated or private, or does not exist; set KILN_HF_TOKEN to a token that may read it';
  }

  private refusal(response: Response, repo: string, revision: string): JobFailure {
    const code = response.headers.get('x-error-code');
    const what = `hub repository ${repo}`;
    if (response.status === 401 || response.status === 403) return statusFailure(response.status, what, this.refusedHint);
    if (response.status === 404) {
      const missing = code === 'RevisionNotFound' ? `has no revision ${revision}` : code === 'EntryNotFound' ? 'has no such folder' : 'does not exist';
      return new JobFailure('SOURCE_NOT_FOUND', `${what} ${missing} (HTTP 404)`, false);
    }
    return statusFailure(response.status, what);
  }
}
