import type { GraphQLResponse } from './graphql.js';

const MODEL_FIELDS = 'id name kind pipeline sha256 sizeBytes downloadUrl baseModel { id } files { path sizeBytes sha256 downloadUrl }';

/** `uploadModel` as a GraphQL multipart request (the multipart request spec), as Apollo and urql send it. */
export async function uploadMultipart(baseUrl: string, bytes: Uint8Array, filename: string, input: Record<string, unknown>): Promise<GraphQLResponse> {
  const form = new FormData();
  form.append(
    'operations',
    JSON.stringify({
      query: `mutation($file: Upload!, $input: UploadModelInput!) { uploadModel(file: $file, input: $input) { ${MODEL_FIELDS} } }`,
      variables: { file: null, input },
    }),
  );
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', new Blob([Buffer.from(bytes)]), filename);
  const res = await fetch(`${baseUrl}/graphql`, { method: 'POST', body: form, headers: { 'x-graphql-yoga-csrf': '1' } });
  return { ...((await res.json()) as GraphQLResponse), status: res.status } as GraphQLResponse;
}

type Gql = <T = any>(query: string, variables?: Record<string, unknown>) => Promise<GraphQLResponse<T>>;

/** A direct upload, file by file (createModelUpload, PUT, completeModelUpload). */
export async function uploadDirect(gql: Gql, files: { path: string; bytes: Uint8Array }[], input: Record<string, unknown>) {
  let uploadId: string | undefined;
  for (const f of files) {
    const res = await gql(
      `mutation($input: UploadModelInput!, $size: Float!) { createModelUpload(input: $input, sizeBytes: $size) { id url method headers expiresAt path } }`,
      { input: { ...input, path: f.path, ...(uploadId ? { uploadId } : {}) }, size: f.bytes.length },
    );
    if (res.errors) return res;
    const target = res.data.createModelUpload;
    uploadId = target.id;
    const put = await fetch(target.url, { method: target.method, headers: target.headers, body: Buffer.from(f.bytes) });
    if (!put.ok) throw new Error(`PUT ${f.path} answered ${put.status}: ${await put.text()}`);
  }
  return gql(`mutation($id: ID!) { completeModelUpload(id: $id) { ${MODEL_FIELDS} } }`, { id: uploadId });
}
