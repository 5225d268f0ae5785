import type { Client } from 'urql';
import { type Problem, problemsOf, problemsOfBody } from './errors';
import {
  COMPLETE_DATASET_UPLOAD,
  type CompleteDatasetUploadData,
  CREATE_DATASET,
  CREATE_DATASET_UPLOAD,
  type CreateDatasetUploadData,
  type Dataset,
  type DatasetInput,
} from './training-operations';
import { type OnProgress, send, sendMultipart } from './upload';

export type DatasetResult = { dataset: Dataset } | { problems: Problem[] };

/** `createDataset` in one multipart request: every file a part, in the order shown (Kiln's `files.<i>`). */
export async function createDatasetMultipart(key: string | null, files: File[], input: DatasetInput, onProgress: OnProgress): Promise<DatasetResult> {
  const paths = files.map((_, i) => `variables.files.${i}`);
  const body = await sendMultipart<{ createDataset?: Dataset }>(key, CREATE_DATASET, { input, files: files.map(() => null) }, files, paths, onProgress);
  if (body.data?.createDataset) return { dataset: body.data.createDataset };
  return { problems: problemsOfBody(body, body.status) };
}

/**
 * A direct upload: createDatasetUpload announces every file (names and sizes, checked before a
 * byte is sent) and answers where to PUT each; completeDatasetUpload then checks what arrived.
 * Its refusals name the files as the multipart one does (`files.<i>`).
 */
export async function createDatasetDirect(client: Client, files: File[], input: DatasetInput, onProgress: OnProgress): Promise<DatasetResult> {
  const opened = await client.mutation<CreateDatasetUploadData>(CREATE_DATASET_UPLOAD, { input, files: files.map((f) => ({ name: f.name, sizeBytes: f.size })) }).toPromise();
  if (opened.error || !opened.data) return { problems: problemsOf(opened.error) };
  const upload = opened.data.createDatasetUpload;
  const total = files.reduce((n, f) => n + f.size, 0);
  let done = 0;
  for (const [i, file] of files.entries()) {
    const target = upload.files[i]!;
    const put = await send(target.method, target.url, target.headers, file, (sent) => onProgress(done + Math.min(sent, file.size), total));
    if (put.status < 200 || put.status >= 300) {
      return { problems: [{ code: `HTTP ${put.status}`, meaning: 'The storage refused the file', field: `files.${i}`, message: `${file.name}: ${put.text.slice(0, 200)}` }] };
    }
    done += file.size;
    onProgress(done, total);
  }
  const completed = await client.mutation<CompleteDatasetUploadData>(COMPLETE_DATASET_UPLOAD, { id: upload.id }).toPromise();
  if (completed.error || !completed.data) return { problems: problemsOf(completed.error) };
  return { dataset: completed.data.completeDatasetUpload };
}

/** The file a refusal names (`files.2`, `files.2.name`), by its place in the request. */
export function fileIndexOf(p: Problem): number | undefined {
  const m = /^files\.(\d+)(\.|$)/.exec(p.field ?? '');
  return m ? Number(m[1]) : undefined;
}
