import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from 'graphql-ws';
import { collect, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE, GENERATE_BATCH, GENERATE_WITH_KEY } from '../support/operations.js';

const input = (change: Record<string, unknown> = {}) => ({ prompt: 'a kiln', width: 64, height: 64, steps: 2, ...change });

describe('text Postgres cannot store, in any argument', () => {
  let k: TestKiln;
  let client: Client;
  beforeAll(async () => {
    k = await startTestKiln({}, ['--role', 'api']);
    client = wsClient(k.url);
  });
  afterAll(async () => {
    await client?.dispose();
    await k?.stop();
  });

  const refusedOverHttp = async (query: string, variables?: Record<string, unknown>) => {
    const res = await fetch(`${k.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    expect(res.status).toBeLessThan(500);
    const { errors } = (await res.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };
    expect(errors).toHaveLength(1);
    expect(errors[0]!.extensions.code).toBe('BAD_USER_INPUT');
    return errors[0]!;
  };

  it.each([
    ['a prompt', GENERATE, { input: input({ prompt: 'a\u0000b' }) }, 'input.prompt'],
    ['a negative prompt', GENERATE, { input: input({ negativePrompt: 'no\u0000pe' }) }, 'input.negativePrompt'],
    ['the third input of a batch', GENERATE_BATCH, { inputs: [input(), input(), input({ negativePrompt: '\u0000' })] }, 'inputs.2.negativePrompt'],
    ['an idempotency key', GENERATE_WITH_KEY, { input: input(), key: 'k\u0000' }, 'idempotencyKey'],
    ['an id', 'query($id: ID!) { generation(id: $id) { id } }', { id: '\u0000' }, 'id'],
    ["a model's name", 'mutation($i: UploadModelInput!) { createModelUpload(input: $i, sizeBytes: 10) { id } }', { i: { name: 'lora\u0000', kind: 'LORA' } }, 'input.name'],
  ])('refuses a NUL in %s from the variables, naming its path', async (_, query, variables, field) => {
    const error = await refusedOverHttp(query, variables);
    expect(error.extensions.field).toBe(field);
    expect(error.message).toBe(`${field} must not contain NUL characters (U+0000)`);
  });

  it('refuses a NUL written inline in the document, in a list, an object or a variable default', async () => {
    expect((await refusedOverHttp('mutation { generate(input: { prompt: "a\\u0000b" }) { id } }')).extensions.field).toBe('input.prompt');
    expect(
      (await refusedOverHttp('mutation($n: String = "\\u0000") { generateBatch(inputs: [{ prompt: "ok" }, { prompt: "ok", negativePrompt: $n }]) { estimatedTotalSeconds } }'))
        .extensions.field,
    ).toBe('inputs.1.negativePrompt');
  });

  it('refuses an unpaired surrogate, which Postgres would refuse in jsonb and silently replace in text', async () => {
    const error = await refusedOverHttp(GENERATE, { input: input({ prompt: 'half an emoji \ud83d' }) });
    expect(error).toMatchObject({ message: 'input.prompt must not contain unpaired UTF-16 surrogates', extensions: { field: 'input.prompt' } });
    // A whole emoji is fine.
    expect((await ok(k.gql(GENERATE, { input: input({ prompt: 'a whole emoji 🔥' }) }))).generate.id).toBeTruthy();
  });

  it('refuses them over graphql-ws too, and the socket keeps serving', async () => {
    await expect(collect(client, GENERATE, { input: input({ prompt: 'a\u0000b' }) })).rejects.toThrow(/"field":"input\.prompt".*BAD_USER_INPUT|BAD_USER_INPUT.*"field":"input\.prompt"/);
    await expect(collect(client, 'mutation { generate(input: { prompt: "x", negativePrompt: "\\u0000" }) { id } }')).rejects.toThrow(/input\.negativePrompt/);
    expect(await collect(client, '{ queueStats { pending } }')).toHaveLength(1);
  });

  it('writes nothing for a refused input', async () => {
    const { generations } = await ok(k.gql('{ generations(first: 50) { edges { node { prompt } } } }'));
    expect(generations.edges.map((e: { node: { prompt: string } }) => e.node.prompt)).toEqual(['a whole emoji 🔥']);
  });
});
