import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE } from '../support/operations.js';

describe('generate refuses input outside the contract', () => {
  let k: TestKiln;
  const count = async () => {
    const [{ generations }] = await k.kiln.ds.query('SELECT count(*)::int AS generations FROM jobs');
    const [{ jobs }] = await k.kiln.ds.query(`SELECT count(*)::int AS jobs FROM pgboss.job`);
    return { generations, jobs };
  };

  // The worker is off: nothing should be picked up or changed behind the test's back.
  beforeAll(async () => {
    k = await startTestKiln({}, ['--role', 'api']);
  });
  afterAll(() => k?.stop());

  const ok = { prompt: 'a lighthouse at dusk' };
  const cases: [string, Record<string, unknown>, string][] = [
    ['an empty prompt', { prompt: '' }, 'input.prompt'],
    ['a prompt of spaces', { prompt: '   \n ' }, 'input.prompt'],
    ['a prompt of 501 characters', { prompt: 'x'.repeat(501) }, 'input.prompt'],
    ['a negative prompt of 501 characters', { ...ok, negativePrompt: 'y'.repeat(501) }, 'input.negativePrompt'],
    ['a width under 64', { ...ok, width: 56 }, 'input.width'],
    ['a width that is not a multiple of 8', { ...ok, width: 100 }, 'input.width'],
    ['a height over 2048', { ...ok, height: 2056 }, 'input.height'],
    ['zero steps', { ...ok, steps: 0 }, 'input.steps'],
    ['151 steps', { ...ok, steps: 151 }, 'input.steps'],
    ['five images', { ...ok, numImages: 5 }, 'input.numImages'],
    ['a negative guidance scale', { ...ok, guidanceScale: -0.5 }, 'input.guidanceScale'],
    ['a guidance scale over 30', { ...ok, guidanceScale: 30.5 }, 'input.guidanceScale'],
    ['a LoRA weight over 2', { ...ok, loraWeight: 2.5 }, 'input.loraWeight'],
    ['a negative seed', { ...ok, seed: -1 }, 'input.seed'],
    ['a seed past 2^32 - 1', { ...ok, seed: 4294967296 }, 'input.seed'],
    ['a fractional seed', { ...ok, seed: 1.5 }, 'input.seed'],
    ['a model id that is not an id', { ...ok, modelId: 'sd15' }, 'input.modelId'],
    ['a model that does not exist', { ...ok, modelId: crypto.randomUUID() }, 'input.modelId'],
  ];

  it.each(cases)('refuses %s with BAD_USER_INPUT naming the field, and writes nothing', async (_, input, field) => {
    const before = await count();
    const res = await k.gql(GENERATE, { input });
    expect(res.data).toBeFalsy();
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(res.errors![0]!.message).toContain(field);
    expect(await count()).toEqual(before);
  });

  it('refuses a malformed operation with BAD_USER_INPUT and an HTTP 4xx, never a 5xx', async () => {
    for (const body of [
      { query: 'mutation { generate(input: {}) { id } }' }, // missing prompt
      { query: GENERATE, variables: { input: { prompt: 12 } } }, // wrong type
      { query: 'mutation { generate(input: { prompt: "x" }) { id ' }, // syntax
      { query: '{ nope }' },
    ]) {
      const res = await fetch(`${k.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status).toBeLessThan(500);
      const json = (await res.json()) as { errors: { extensions: { code: string } }[] };
      expect(json.errors[0]!.extensions.code).toBe('BAD_USER_INPUT');
    }
  });

  it("refuses at submit what the model's pipeline does not accept, naming the field, and writes nothing", async () => {
    const before = await count();
    // The built-in model has a sampler of its own: it offers no schedulers to choose from.
    const res = await k.gql(GENERATE, { input: { ...ok, scheduler: 'DDIM' } });
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.scheduler' });
    expect(res.errors![0]!.message).toBe('input.scheduler cannot be chosen for model "kiln-builtin" (builtin), which has a sampler of its own');
    const batch = await k.gql(`mutation($inputs: [GenerateInput!]!) { generateBatch(inputs: $inputs) { estimatedTotalSeconds } }`, {
      inputs: [ok, { ...ok, scheduler: 'EULER' }],
    });
    expect(batch.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inputs.1.scheduler' });
    expect(await count()).toEqual(before);
  });

  it("tells clients what each model accepts, for a form to be built from", async () => {
    const { data } = await k.gql(`{ models(kind: BASE) { edges { node { name modality capabilities { __typename ... on ImageCapabilities {
      schedulers defaultScheduler maxImages negativePrompt lora steps { min max default } guidanceScale { min max default }
      width { min max default multipleOf } height { default } } } } } } }`);
    const builtin = data.models.edges.map((e: { node: unknown }) => e.node).find((m: { name: string }) => m.name === 'kiln-builtin');
    expect(builtin).toEqual({
      name: 'kiln-builtin',
      modality: 'image',
      capabilities: {
        __typename: 'ImageCapabilities',
        schedulers: [],
        defaultScheduler: null,
        maxImages: 4,
        negativePrompt: true,
        lora: true,
        steps: { min: 1, max: 150, default: 8 },
        guidanceScale: { min: 0, max: 30, default: 7.5 },
        width: { min: 64, max: 2048, default: 256, multipleOf: 8 },
        height: { default: 256 },
      },
    });
  });

  it('accepts the limits themselves and fills in the model defaults', async () => {
    const res = await k.gql(GENERATE, {
      input: { prompt: `  ${'z'.repeat(500)}  `, width: 64, height: 2048, steps: 150, numImages: 4, guidanceScale: 30, seed: 4294967295 },
    });
    expect(res.errors).toBeUndefined();
    expect(res.data.generate).toMatchObject({ status: 'PENDING', currentStep: 'QUEUED', width: 64, height: 2048, steps: 150, seed: 4294967295 });
    const defaults = await k.gql(GENERATE, { input: { prompt: 'defaults' } });
    expect(defaults.data.generate).toMatchObject({ width: 256, height: 256, steps: 8, model: { name: 'kiln-builtin' } });
    expect(defaults.data.generate.seed).toBeGreaterThanOrEqual(0);
  });
});
