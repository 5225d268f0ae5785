import type { Client } from 'urql';
import { authHeaders } from './api-key';
import { type Problem, problemsOf, problemsOfBody } from './errors';
import {
  COMPLETE_MODEL_UPLOAD,
  type CompleteModelUploadData,
  CREATE_MODEL_UPLOAD,
  type CreateModelUploadData,
  type Model,
  UPLOAD_MODEL,
  type UploadModelInput,
} from './operations';

export type UploadResult = { model: Model } | { problems: Problem[] };

/** Bytes sent so far of all the upload's bytes. */
export type OnProgress = (sent: number, total: number) => void;

/** Headers a page may not set; the browser sends them itself (the length from the body). */
const BROWSER_SET = new Set(['content-length', 'host', 'connection', 'expect']);

/** One request whose upload progress can be followed (fetch cannot report it). */
export function send(method: string, url: string, headers: Record<string, string>, body: XMLHttpRequestBodyInit, onProgress: (sent: number) => void) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [k, v] of Object.entries(headers)) if (!BROWSER_SET.has(k.toLowerCase())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText });
    xhr.onerror = () => reject(new Error(`the upload to ${new URL(url, location.href).host} failed`));
    xhr.send(body);
  });
}

type Body<T> = { data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[] } | undefined;

/**
 * A GraphQL multipart request (the multipart request spec): `files[i]` goes to the variable path
 * `paths[i]`. Browsers may send a multipart form across sites without asking first, so yoga
 * wants its CSRF header on it.
 */
export async function sendMultipart<T>(key: string | null, query: string, variables: Record<string, unknown>, files: File[], paths: string[], onProgress: OnProgress): Promise<Body<T> & { status: number }> {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query, variables }));
  form.append('map', JSON.stringify(Object.fromEntries(paths.map((p, i) => [String(i), [p]]))));
  files.forEach((file, i) => form.append(String(i), file, file.name));
  const total = files.reduce((n, f) => n + f.size, 0);
  const res = await send('POST', '/graphql', { 'x-graphql-yoga-csrf': '1', ...authHeaders(key) }, form, (sent) => onProgress(Math.min(sent, total), total));
  try {
    return { ...(JSON.parse(res.text) as Body<T>), status: res.status };
  } catch {
    return { status: res.status };
  }
}

/** `uploadModel` in one multipart request. */
export async function uploadMultipart(key: string | null, file: File, input: UploadModelInput, onProgress: OnProgress): Promise<UploadResult> {
  const body = await sendMultipart<{ uploadModel?: Model }>(key, UPLOAD_MODEL, { file: null, input }, [file], ['variables.file'], onProgress);
  if (body.data?.uploadModel) return { model: body.data.uploadModel };
  return { problems: problemsOfBody(body, body.status) };
}

/** A file of a direct upload, and its place in the model's folder (base models). */
export interface UploadFile {
  file: File;
  path?: string;
}

/**
 * A direct upload: createModelUpload for each file (the first opens the upload, the others join
 * it), its bytes PUT straight to the storage's signed link, then completeModelUpload.
 */
export async function uploadDirect(client: Client, files: UploadFile[], input: UploadModelInput, onProgress: OnProgress): Promise<UploadResult> {
  const total = files.reduce((n, f) => n + f.file.size, 0);
  let done = 0;
  let uploadId: string | undefined;
  for (const { file, path } of files) {
    const opened = await client
      .mutation<CreateModelUploadData>(CREATE_MODEL_UPLOAD, { input: { ...input, ...(path ? { path } : {}), ...(uploadId ? { uploadId } : {}) }, sizeBytes: file.size })
      .toPromise();
    if (opened.error || !opened.data) return { problems: problemsOf(opened.error) };
    const target = opened.data.createModelUpload;
    uploadId = target.id;
    const put = await send(target.method, target.url, target.headers, file, (sent) => onProgress(done + Math.min(sent, file.size), total));
    if (put.status < 200 || put.status >= 300) {
      return { problems: [{ code: `HTTP ${put.status}`, meaning: 'The storage refused the file', message: `${path ?? file.name}: ${put.text.slice(0, 200)}` }] };
    }
    done += file.size;
    onProgress(done, total);
  }
  const completed = await client.mutation<CompleteModelUploadData>(COMPLETE_MODEL_UPLOAD, { id: uploadId }).toPromise();
  if (completed.error || !completed.data) return { problems: problemsOf(completed.error) };
  return { model: completed.data.completeModelUpload };
}
