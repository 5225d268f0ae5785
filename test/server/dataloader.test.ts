import { PostgresQueryRunner } from 'typeorm/driver/postgres/PostgresQueryRunner.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ok } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE_BATCH } from '../support/operations.js';

describe('relations resolved through DataLoaders', () => {
  let k: TestKiln;
  beforeAll(async () => {
    k = await startTestKiln({}, ['--role', 'api']);
    for (let i = 0; i < 10; i++) await ok(k.gql(GENERATE_BATCH, { inputs: Array.from({ length: 10 }, (_, j) => ({ prompt: `p${i}-${j}` })) }));
  });
  afterAll(() => k?.stop());

  it('lists 100 generations with their models, LoRAs, images and attempts in a handful of queries', async () => {
    const queries = vi.spyOn(PostgresQueryRunner.prototype, 'query');
    const { generations } = await ok(
      k.gql(`{ generations(first: 100) { edges { node { id model { id name baseModel { id } } lora { id } images { url } attempts { attempt } } } } }`),
    );
    const count = queries.mock.calls.length;
    queries.mockRestore();
    expect(generations.edges).toHaveLength(100);
    expect(generations.edges.every((e: { node: { model: { name: string } } }) => e.node.model.name === 'kiln-builtin')).toBe(true);
    // The page, then one query per kind of relation: not one per generation.
    expect(count).toBeGreaterThanOrEqual(3); // the spy sees the page and the loaders' queries
    expect(count).toBeLessThanOrEqual(5);
  });
});
