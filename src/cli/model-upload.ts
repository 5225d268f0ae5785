import fs from 'node:fs/promises';
import path from 'node:path';

export interface ModelUploadInput {
  name: string;
  kind: 'BASE' | 'LORA';
  baseModelId?: string;
  triggerWord?: string;
}

const MODEL_FIELDS = 'id name kind pipeline sha256 sizeBytes';

/**
 * Sends a model folder (or a LoRA file) to a running Kiln as a client would: one
 * createModelUpload and one PUT per file, then completeModelUpload. Returns the new model.
 */
export async function uploadModelFolder(baseUrl: string, source: string, input: ModelUploadInput, headers: Record<string, string> = {}) {
  const gql = async (query: string, variables: object) => {
    const res = await fetch(`${baseUrl}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data?: any; errors?: { message: string; extensions?: { code?: string } }[] };
    if (body.errors?.length) throw new Error(`${body.errors[0]!.extensions?.code ?? 'ERROR'}: ${body.errors[0]!.message}`);
    return body.data;
  };
  const files = (await fs.stat(source)).isDirectory() ? await filesIn(source) : [path.basename(source)];
  const root = (await fs.stat(source)).isDirectory() ? source : path.dirname(source);
  let uploadId: string | undefined;
  for (const file of files) {
    const bytes = await fs.readFile(path.join(root, file));
    const { createModelUpload: target } = await gql(
      `mutation($input: UploadModelInput!, $size: Float!) { createModelUpload(input: $input, sizeBytes: $size) { id url method headers } }`,
      { input: { ...input, ...(input.kind === 'BASE' ? { path: file } : {}), ...(uploadId ? { uploadId } : {}) }, size: bytes.length },
    );
    uploadId = target.id;
    const put = await fetch(target.url, { method: target.method, headers: target.headers, body: bytes });
    if (!put.ok) throw new Error(`sending ${file} failed: HTTP ${put.status} ${await put.text()}`);
  }
  return (await gql(`mutation($id: ID!) { completeModelUpload(id: $id) { ${MODEL_FIELDS} } }`, { id: uploadId })).completeModelUpload as {
    id: string;
    name: string;
    kind: string;
    pipeline: string;
  };
}

/** Every file under `dir`, as paths relative to it, with `/` separators. */
async function filesIn(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}
