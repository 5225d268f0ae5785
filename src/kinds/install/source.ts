/** Where an install takes a model from: a Hugging Face hub repository, or a URL. */
export type InstallSource =
  | { type: 'hub'; repo: string; revision: string | null; subfolder: string | null }
  | { type: 'url'; url: URL };

const REPO = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const REVISION = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export class SourceError extends Error {}

/**
 * Reads `hf:owner/repo`, optionally with `@revision` (a branch, tag or commit) and `:subfolder`
 * (the model's folder inside the repository), or an http(s) URL to one file or an archive.
 * Throws SourceError saying what is wrong.
 */
export function parseSource(text: string): InstallSource {
  if (text.startsWith('hf:')) {
    const [left, subfolder = null] = splitOnce(text.slice(3), ':');
    const [repo, revision = null] = splitOnce(left, '@');
    if (!REPO.test(repo) || repo.includes('..')) throw new SourceError('names no hub repository: write hf:owner/repo, optionally with @revision and :subfolder');
    if (revision !== null && !isRevision(revision)) throw new SourceError(`has a revision (${JSON.stringify(revision)}) that is not a branch, tag or commit`);
    if (subfolder !== null && !subfolder.replace(/\/+$/, '').split('/').every((s) => SEGMENT.test(s) && !/^\.+$/.test(s))) {
      throw new SourceError(`has a subfolder (${JSON.stringify(subfolder)}) that is not a plain folder path`);
    }
    return { type: 'hub', repo, revision, subfolder: subfolder?.replace(/\/+$/, '') || null };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SourceError('must be hf:owner/repo or an https:// URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new SourceError(`must be hf:owner/repo or an https:// URL, not a ${url.protocol} URL`);
  if (url.username || url.password) throw new SourceError('must not carry credentials in the URL (gated hub repos take KILN_HF_TOKEN)');
  return { type: 'url', url };
}

/** A branch, tag or commit name as the hub spells them (`main`, `v1.0`, `refs/pr/3`, a commit hash). */
export const isRevision = (text: string) => REVISION.test(text) && !text.split('/').some((s) => s === '' || s === '..');

const splitOnce = (text: string, separator: string): [string, string?] => {
  const i = text.indexOf(separator);
  return i < 0 ? [text] : [text.slice(0, i), text.slice(i + 1)];
};

/** The name a model gets when the client gives none: the repository's (and subfolder's), or the file's. */
export function nameOf(source: InstallSource): string {
  if (source.type === 'hub') return [source.repo.split('/')[1], source.subfolder].filter(Boolean).join('/');
  const file = decodeURIComponent(source.url.pathname.split('/').filter(Boolean).pop() ?? '');
  return file.replace(/\.(safetensors|zip|tar|tgz|tar\.gz)$/i, '').slice(0, 200) || source.url.hostname;
}

/** How the source is named in messages and logs: a URL without its query, which may hold a signature. */
export function describeSource(source: InstallSource): string {
  if (source.type === 'hub') return `hf:${source.repo}${source.revision ? `@${source.revision}` : ''}${source.subfolder ? `:${source.subfolder}` : ''}`;
  return `${source.url.origin}${source.url.pathname}`;
}
