import type { GraphQLClient, GraphQLResponse } from './graphql.js';

export const DATASET_FIELDS = 'id name status imageCount sizeBytes sha256 smallestSide resolution images { file name width height sha256 caption url }';

export interface SentFile {
  name: string;
  bytes: Uint8Array | string;
}

const bytesOf = (f: SentFile) => (typeof f.bytes === 'string' ? Buffer.from(f.bytes) : Buffer.from(f.bytes));

/** `createDataset` as a GraphQL multipart request, every file in it, as a browser or curl sends it. */
export async function createDatasetMultipart(baseUrl: string, files: SentFile[], input: Record<string, unknown>): Promise<GraphQLResponse & { status: number }> {
  const form = new FormData();
  form.append(
    'operations',
    JSON.stringify({
      query: `mutation($files: [Upload!]!, $input: DatasetInput!) { createDataset(files: $files, input: $input) { ${DATASET_FIELDS} } }`,
      variables: { files: files.map(() => null), input },
    }),
  );
  form.append('map', JSON.stringify(Object.fromEntries(files.map((_, i) => [String(i), [`variables.files.${i}`]]))));
  files.forEach((f, i) => form.append(String(i), new Blob([bytesOf(f)]), f.name));
  const res = await fetch(`${baseUrl}/graphql`, { method: 'POST', body: form, headers: { 'x-graphql-yoga-csrf': '1' } });
  return { ...((await res.json()) as GraphQLResponse), status: res.status };
}

/** A direct dataset upload: announce the files, PUT each, complete. */
export async function createDatasetDirect(gql: GraphQLClient, files: SentFile[], input: Record<string, unknown>): Promise<GraphQLResponse> {
  const opened = await gql(
    `mutation($input: DatasetInput!, $files: [DatasetFileInput!]!) { createDatasetUpload(input: $input, files: $files) { id files { name url method headers expiresAt } } }`,
    { input, files: files.map((f) => ({ name: f.name, sizeBytes: bytesOf(f).length })) },
  );
  if (opened.errors) return opened;
  const upload = opened.data.createDatasetUpload;
  for (const [i, target] of upload.files.entries()) {
    const put = await fetch(target.url, { method: target.method, headers: target.headers, body: bytesOf(files[i]!) });
    if (!put.ok) throw new Error(`PUT ${target.name} answered ${put.status}: ${await put.text()}`);
  }
  return gql(`mutation($id: ID!) { completeDatasetUpload(id: $id) { ${DATASET_FIELDS} } }`, { id: upload.id });
}
