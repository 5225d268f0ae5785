import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FALLBACK } from '../../../src/kinds/audio/estimate.js';
import { GENERATE_AUDIO, GENERATE_AUDIO_BATCH, MODELS_WITH_CAPABILITIES } from '../../support/audio-operations.js';
import { ok } from '../../support/graphql.js';
import { startTestKiln, type TestKiln } from '../../support/kiln.js';
import { GENERATE } from '../../support/operations.js';

describe('music generations at submit: defaults, refusals, batches, idempotency and estimates', () => {
  let k: TestKiln;
  let music: { id: string };
  let image: { id: string };
  const counts = async () => {
    const [row] = await k.kiln.ds.query(
      `SELECT (SELECT count(*)::int FROM jobs) AS jobs, (SELECT count(*)::int FROM job_events) AS events, (SELECT count(*)::int FROM pgboss.job WHERE name LIKE 'audio.%') AS queued`,
    );
    return row as { jobs: number; events: number; queued: number };
  };

  // API only: nothing runs, so what is written stays as written.
  beforeAll(async () => {
    k = await startTestKiln({ KILN_MAX_BATCH: '4' }, ['--role', 'api']);
    const { models } = await ok(k.gql(MODELS_WITH_CAPABILITIES));
    const nodes = models.edges.map((e: { node: unknown }) => e.node) as { id: string; name: string }[];
    music = nodes.find((m) => m.name === 'kiln-builtin-music')!;
    image = nodes.find((m) => m.name === 'kiln-builtin')!;
  });
  afterAll(() => k?.stop());

  it('has the built-in music model as the default music model beside the default image model, saying what it accepts', async () => {
    const { models } = await ok(k.gql(MODELS_WITH_CAPABILITIES));
    const byName = Object.fromEntries(models.edges.map((e: { node: { name: string } }) => [e.node.name, e.node]));
    expect(byName['kiln-builtin']).toMatchObject({ modality: 'image', isDefault: true, builtin: true });
    expect(byName['kiln-builtin-music']).toEqual({
      id: music.id,
      name: 'kiln-builtin-music',
      pipeline: 'builtin-music',
      modality: 'audio',
      isDefault: true,
      builtin: true,
      capabilities: {
        __typename: 'AudioCapabilities',
        durationSeconds: { min: 1, max: 30, default: 8 },
        guidanceScale: { min: 0, max: 20, default: 3 },
        // Its vocabulary is 15 notes.
        topK: { min: 0, max: 15, default: 15 },
        temperature: { min: 0, max: 4, default: 1 },
        sampleRate: 32000,
        channels: 1,
        lora: false,
      },
    });
  });

  it('fills in the default music model and its defaults, and an image job still gets the image model', async () => {
    const { generateAudio } = await ok(k.gql(GENERATE_AUDIO, { input: { prompt: 'defaults please' } }));
    expect(generateAudio).toMatchObject({ status: 'PENDING', currentStep: 'QUEUED', durationSeconds: 8, guidanceScale: 3, topK: 15, temperature: 1, model: { id: music.id } });
    expect(generateAudio.seed).toBeGreaterThanOrEqual(0);
    const [job] = await k.kiln.ds.query(`SELECT queue FROM jobs WHERE id = $1`, [generateAudio.id]);
    expect(job.queue).toBe('audio.builtin-music');
    const { generate } = await ok(k.gql(GENERATE, { input: { prompt: 'an image' } }));
    expect(generate.model.id).toBe(image.id);
  });

  it('keeps the built-in music model: deleting it is a CONFLICT', async () => {
    const res = await k.gql(`mutation($id: ID!) { deleteModel(id: $id) }`, { id: music.id });
    expect(res.errors![0]!.extensions!.code).toBe('CONFLICT');
    expect(res.errors![0]!.message).toContain("Kiln's built-in model");
  });

  const ok_ = { prompt: 'a lullaby' };
  const refusals: [string, () => Record<string, unknown>, string, RegExp][] = [
    ['a duration of 31 s', () => ({ ...ok_, durationSeconds: 31 }), 'input.durationSeconds', /between 1 and 30/],
    ['a duration under 1 s', () => ({ ...ok_, durationSeconds: 0.5 }), 'input.durationSeconds', /between 1 and 30/],
    ['a topK past the model\'s vocabulary', () => ({ ...ok_, topK: 16 }), 'input.topK', /between 0 and 15 for model "kiln-builtin-music"/],
    ['a negative topK', () => ({ ...ok_, topK: -1 }), 'input.topK', /between 0 and 65536/],
    ['a temperature over 4', () => ({ ...ok_, temperature: 4.5 }), 'input.temperature', /between 0 and 4/],
    ['a guidance scale over 20', () => ({ ...ok_, guidanceScale: 21 }), 'input.guidanceScale', /between 0 and 20/],
    ['an empty prompt', () => ({ prompt: '  ' }), 'input.prompt', /empty/],
    ['a seed past 2^32 - 1', () => ({ ...ok_, seed: 4294967296 }), 'input.seed', /between 0 and 4294967295/],
    ['an image model', () => ({ ...ok_, modelId: image.id }), 'input.modelId', /names an image model \("kiln-builtin"\), not a music model/],
    ['a model that does not exist', () => ({ ...ok_, modelId: crypto.randomUUID() }), 'input.modelId', /names no model/],
  ];

  it.each(refusals)('refuses %s with BAD_USER_INPUT naming the field, and writes nothing', async (_, input, field, message) => {
    const before = await counts();
    const res = await k.gql(GENERATE_AUDIO, { input: input() });
    expect(res.data).toBeFalsy();
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(res.errors![0]!.message).toMatch(message);
    expect(await counts()).toEqual(before);
  });

  it('refuses a music model given to generate, naming input.modelId', async () => {
    const before = await counts();
    const res = await k.gql(GENERATE, { input: { prompt: 'a picture', modelId: music.id } });
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.modelId' });
    expect(res.errors![0]!.message).toBe('input.modelId names an audio model ("kiln-builtin-music"), not an image model');
    expect(await counts()).toEqual(before);
  });

  it('writes a whole batch at once, and nothing when one input is bad, naming its index and field', async () => {
    const before = await counts();
    const { generateAudioBatch } = await ok(k.gql(GENERATE_AUDIO_BATCH, { inputs: [{ prompt: 'one' }, { prompt: 'two', seed: 9, durationSeconds: 2 }] }));
    expect(generateAudioBatch.generations.map((g: { status: string; seed: number; durationSeconds: number }) => [g.status, g.durationSeconds])).toEqual([['PENDING', 8], ['PENDING', 2]]);
    expect(generateAudioBatch.generations[1].seed).toBe(9);
    expect(await counts()).toEqual({ jobs: before.jobs + 2, events: before.events + 2, queued: before.queued + 2 });

    const after = await counts();
    const atValidation = await k.gql(GENERATE_AUDIO_BATCH, { inputs: [{ prompt: 'fine' }, { prompt: 'fine too' }, { prompt: 'too long', durationSeconds: 31 }] });
    expect(atValidation.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inputs.2.durationSeconds' });
    // Past validation, refused by the model's own limits after the first input was prepared.
    const atPrepare = await k.gql(GENERATE_AUDIO_BATCH, { inputs: [{ prompt: 'fine' }, { prompt: 'too many notes', topK: 100 }] });
    expect(atPrepare.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inputs.1.topK' });
    const imageModel = await k.gql(GENERATE_AUDIO_BATCH, { inputs: [{ prompt: 'fine' }, { prompt: 'fine' }, { prompt: 'x', modelId: image.id }] });
    expect(imageModel.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inputs.2.modelId' });
    for (const inputs of [[], Array.from({ length: 5 }, (_, i) => ({ prompt: `p${i}` }))]) {
      const res = await k.gql(GENERATE_AUDIO_BATCH, { inputs });
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inputs' });
    }
    expect(await counts()).toEqual(after);
  });

  it('makes one generation for one key sent eight times at once, replays batches by key, and refuses the key with another input', async () => {
    const before = await counts();
    const input = { prompt: 'exactly once', seed: 5 };
    const answers = await Promise.all(Array.from({ length: 8 }, () => ok(k.gql(GENERATE_AUDIO, { input, key: 'song-42' }))));
    expect(new Set(answers.map((a) => a.generateAudio.id)).size).toBe(1);
    expect((await counts()).jobs).toBe(before.jobs + 1);

    const other = await k.gql(GENERATE_AUDIO, { input: { prompt: 'another song' }, key: 'song-42' });
    expect(other.errors![0]!.extensions!.code).toBe('CONFLICT');
    const imageWithKey = await k.gql(`mutation($input: GenerateInput!, $key: String) { generate(input: $input, idempotencyKey: $key) { id } }`, { input, key: 'song-42' });
    expect(imageWithKey.errors![0]!.extensions!.code).toBe('CONFLICT');

    const inputs = [{ prompt: 'a' }, { prompt: 'b', durationSeconds: 3 }];
    const first = await ok(k.gql(GENERATE_AUDIO_BATCH, { inputs, key: 'album-7' }));
    const again = await ok(k.gql(GENERATE_AUDIO_BATCH, { inputs, key: 'album-7' }));
    expect(again.generateAudioBatch.generations.map((g: { id: string }) => g.id)).toEqual(first.generateAudioBatch.generations.map((g: { id: string }) => g.id));
    expect((await counts()).jobs).toBe(before.jobs + 3);
  });

  it('estimates from the documented fallback before a model has runs, then from its recent runs', async () => {
    const input = { prompt: 'estimate me', durationSeconds: 8 };
    const first = await ok(k.gql(GENERATE_AUDIO_BATCH, { inputs: [input, { ...input, durationSeconds: 20 }] }));
    const perSecond = FALLBACK.decoderStepsPerSecond['builtin-music']!;
    // 50 frames a second, one decoder step each.
    const fallback = (2 * FALLBACK.overheadMs + ((400 + 1000) / perSecond) * 1000) / 1000;
    expect(first.generateAudioBatch.estimatedTotalSeconds).toBeCloseTo(fallback, 2);

    // History: one finished 8 s run (400 steps), 1.5 s in all, 1 s of which generating: 400 steps a second.
    await k.kiln.ds.query(`UPDATE jobs SET status = 'COMPLETED', completed_at = now(), timing = '{"totalMs": 1500, "generateMs": 1000}' WHERE id = $1`, [
      first.generateAudioBatch.generations[0].id,
    ]);
    const second = await ok(k.gql(GENERATE_AUDIO_BATCH, { inputs: [input, { ...input, durationSeconds: 16 }] }));
    expect(second.generateAudioBatch.estimatedTotalSeconds).toBeCloseTo(0.5 + 1 + 0.5 + 2, 2);
  });
});

describe('music submissions and the rate limit', () => {
  let k: TestKiln;
  beforeAll(async () => {
    k = await startTestKiln({ KILN_RATE_LIMIT_PER_MINUTE: '3', KILN_RATE_LIMIT_ALLOW: '' }, ['--role', 'api']);
  });
  afterAll(() => k?.stop());

  it('draws on the same bucket as images, each input of a batch counting, and refuses past it with RATE_LIMITED', async () => {
    await ok(k.gql(GENERATE, { input: { prompt: 'an image' } }));
    await ok(k.gql(GENERATE_AUDIO_BATCH, { inputs: [{ prompt: 'one' }, { prompt: 'two' }] }));
    const refused = await k.gql(GENERATE_AUDIO, { input: { prompt: 'three' } });
    expect(refused.errors![0]!.extensions).toMatchObject({ code: 'RATE_LIMITED' });
    expect(refused.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(0);
    expect((await k.kiln.ds.query(`SELECT count(*)::int AS n FROM jobs WHERE kind = 'audio'`))[0].n).toBe(2);
  });
});
