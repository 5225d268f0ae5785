import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { uploadModelFolder } from '../../src/cli/model-upload.js';
import { encodeWav } from '../../src/media/wav.js';
import { makeBuiltinLora } from '../../src/models/builtin-lora.js';
import { browserDescribe, launchBrowser, openContext, scratchDir, screenshot } from '../support/browser.js';
import { collect, modelIdNamed, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE, PROGRESS } from '../support/operations.js';
import { writeSdFixture } from '../support/sd-fixtures.js';
import { writeSdxlFixture } from '../support/sdxl-fixtures.js';
import { uploadMultipart } from '../support/uploads.js';
import { ensureWebAppBuilt } from '../support/web-build.js';
import { until } from '../support/web-page.js';

interface Range {
  min: number;
  max: number;
  default: number;
}
interface ImageCapabilities {
  schedulers: string[];
  defaultScheduler: string | null;
  steps: Range;
  guidanceScale: Range;
  width: Range & { multipleOf: number };
  height: Range & { multipleOf: number };
  maxImages: number;
  negativePrompt: boolean;
  sizeConditioning: boolean;
  lora: boolean;
}

const CAPABILITIES = `query($id: ID!) { model(id: $id) { name capabilities { ... on ImageCapabilities {
  schedulers defaultScheduler steps { min max default } guidanceScale { min max default }
  width { min max default multipleOf } height { min max default multipleOf } maxImages negativePrompt sizeConditioning lora
} } } }`;

/** What the app learns only from the API: each model's capabilities, the workers, and outputs of kinds it has no view of. */
browserDescribe('the web app follows what the API declares, in Chromium', () => {
  let k: TestKiln;
  let browser: Browser;
  let errors: string[];
  let page: Page;
  let scratch: string;
  const models: Record<'builtin' | 'sd' | 'sdxl' | 'lora', { id: string; name: string; caps: ImageCapabilities }> = {} as never;

  const finished = async (ids: string[]) => {
    const client = wsClient(k.url);
    await Promise.all(ids.map((id) => collect(client, PROGRESS, { id })));
    await client.dispose();
  };
  const generate = async (input: Record<string, unknown>) => (await ok(k.gql(GENERATE, { input }))).generate.id as string;
  const capabilities = async (id: string) => (await ok(k.gql(CAPABILITIES, { id }))).model.capabilities as ImageCapabilities;

  beforeAll(async () => {
    scratch = scratchDir();
    await ensureWebAppBuilt();
    // Its worker runs image jobs alone, so that a music job waits in a queue it can call blocked.
    [k, browser] = await Promise.all([startTestKiln({ KILN_WORKER_KINDS: 'image' }), launchBrowser()]);
    let context;
    ({ context, errors } = await openContext(browser));
    page = await context.newPage();
    const builtin = { id: await modelIdNamed(k.gql), name: 'kiln-builtin' };
    const [sd, sdxl] = await Promise.all([
      writeSdFixture(path.join(scratch, 'sd'), { layout: 'optimum' }).then((dir) => uploadModelFolder(k.url, dir, { name: 'tiny sd', kind: 'BASE' })),
      writeSdxlFixture(path.join(scratch, 'sdxl')).then((dir) => uploadModelFolder(k.url, dir, { name: 'tiny sdxl', kind: 'BASE' })),
    ]);
    const lora = await uploadMultipart(k.url, makeBuiltinLora({ seed: 9 }), 'glaze.safetensors', { name: 'glaze', kind: 'LORA', baseModelId: builtin.id });
    for (const [key, m] of [['builtin', builtin], ['sd', sd], ['sdxl', sdxl]] as const) models[key] = { id: m.id, name: m.name, caps: await capabilities(m.id) };
    models.lora = { id: lora.data.uploadModel.id, name: 'glaze', caps: models.builtin.caps };
    // The built-in model's first load, so that the worker holds it.
    await finished([await generate({ prompt: 'warm-up', steps: 1, width: 64, height: 64 })]);
  });

  afterAll(async () => {
    await browser?.close();
    await k?.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  const field = (label: string) => page.getByLabel(label, { exact: true });
  const attributes = (l: Locator) => l.evaluate((e: HTMLInputElement) => ({ min: e.min, max: e.max, step: e.step, placeholder: e.placeholder }));
  const expectRanges = async (caps: ImageCapabilities) => {
    expect(await attributes(field('Steps'))).toEqual({ min: String(caps.steps.min), max: String(caps.steps.max), step: '1', placeholder: String(caps.steps.default) });
    expect(await attributes(field('Guidance'))).toEqual({ min: String(caps.guidanceScale.min), max: String(caps.guidanceScale.max), step: 'any', placeholder: String(caps.guidanceScale.default) });
    for (const side of ['width', 'height'] as const) {
      const r = caps[side];
      expect(await attributes(field(side === 'width' ? 'Width' : 'Height'))).toEqual({ min: String(r.min), max: String(r.max), step: String(r.multipleOf), placeholder: String(r.default) });
    }
    expect(await field('Images per job').getAttribute('max')).toBe(String(caps.maxImages));
    expect(await field('Negative prompt').count()).toBe(caps.negativePrompt ? 1 : 0);
    expect(await field('Original height').count()).toBe(caps.sizeConditioning ? 1 : 0);
  };

  it("builds the Generate form from the chosen model's capabilities: no scheduler for the built-in model, an SD model's schedulers, SDXL's size conditioning", async () => {
    const { builtin, sd, sdxl } = models;
    expect(builtin.caps.schedulers).toEqual([]);
    expect(sd.caps.schedulers.length).toBeGreaterThan(1);
    expect(sdxl.caps.sizeConditioning).toBe(true);
    expect(sdxl.caps.width.multipleOf).not.toBe(builtin.caps.width.multipleOf);

    await page.goto(`${k.url}/`);
    await until(() => field('Model').locator('option:checked').textContent()).toBe(`${builtin.name} (default)`);
    expect(await field('Scheduler').count()).toBe(0);
    await expectRanges(builtin.caps);
    // Only the adapters made for the chosen model.
    expect(await field('Adapter').locator('option').allTextContents()).toEqual(['none', 'glaze']);

    await field('Model').selectOption({ label: sd.name });
    await until(() => field('Scheduler').count()).toBe(1);
    const own = `the model's own${sd.caps.defaultScheduler ? ` (${sd.caps.defaultScheduler.replaceAll('_', ' ')})` : ''}`;
    expect(await field('Scheduler').locator('option').allTextContents()).toEqual([own, ...sd.caps.schedulers.map((s) => s.replaceAll('_', ' '))]);
    await expectRanges(sd.caps);
    expect(await field('Adapter').locator('option').allTextContents()).toEqual(['none']);
    await screenshot(page, 'generate-sd');

    // SDXL: sizes stepping by its multiple, and the size conditioning it takes, sent with the job.
    await field('Model').selectOption({ label: sdxl.name });
    await until(() => field('Original height').count()).toBe(1);
    await expectRanges(sdxl.caps);
    const side = sdxl.caps.width.min;
    await field('Prompt').fill('a red fox at dusk');
    for (const [label, value] of [['Steps', '2'], ['Width', String(side)], ['Height', String(side)], ['Original height', '128'], ['Original width', '96'], ['Crop top', '4'], ['Crop left', '0']]) await field(label!).fill(value!);
    // One number of a pair asks for the other.
    expect(await field('Target width').evaluate((e: HTMLInputElement) => e.required)).toBe(false);
    await field('Target height').fill(String(side));
    expect(await field('Target width').evaluate((e: HTMLInputElement) => e.required)).toBe(true);
    await field('Target height').fill('');
    await screenshot(page, 'generate-sdxl');
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    const card = page.getByRole('article', { name: 'Job: a red fox at dusk' });
    await until(() => card.locator('.badge').textContent(), 30_000).toBe('Completed');
    const id = await card.getAttribute('data-job-id');
    const { generation } = await ok(k.gql('query($id: ID!) { generation(id: $id) { model { name } width originalSize cropsCoordsTopLeft targetSize } }', { id }));
    expect(generation).toEqual({ model: { name: sdxl.name }, width: side, originalSize: [128, 96], cropsCoordsTopLeft: [4, 0], targetSize: null });
    expect(errors).toEqual([]);
  });

  it('filters the gallery by model: a base model, or a LoRA adapter', async () => {
    const ids = [
      await generate({ prompt: 'on tiny sd', modelId: models.sd.id, steps: 2, width: 64, height: 64 }),
      await generate({ prompt: 'with glaze', loraId: models.lora.id, steps: 2, width: 64, height: 64 }),
      await generate({ prompt: 'on the built-in model', steps: 2, width: 64, height: 64 }),
    ];
    await finished(ids);
    await page.goto(`${k.url}/gallery`);
    const items = page.locator('.gallery-item');
    const labels = () => items.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
    await until(labels).toEqual(['Completed: on the built-in model', 'Completed: with glaze', 'Completed: on tiny sd', 'Completed: a red fox at dusk', 'Completed: warm-up']);

    await page.getByLabel('Model', { exact: true }).selectOption({ label: models.sd.name });
    await until(labels).toEqual(['Completed: on tiny sd']);
    expect(await page.getByLabel('Kind', { exact: true }).isDisabled()).toBe(true);
    await screenshot(page, 'gallery-by-model');
    await page.getByLabel('Model', { exact: true }).selectOption({ label: 'glaze' });
    await until(labels).toEqual(['Completed: with glaze']);
    // A generation with a LoRA is one of its base model's too.
    await page.getByLabel('Model', { exact: true }).selectOption({ label: models.builtin.name });
    await until(labels).toEqual(['Completed: on the built-in model', 'Completed: with glaze', 'Completed: warm-up']);
    await page.getByLabel('Model', { exact: true }).selectOption({ label: 'Any model' });
    await until(() => items.count()).toBe(5);
    expect(errors).toEqual([]);
  });

  it("renders an Audio output with a player that loads it, its duration and a download, for a job of a kind the app has no view of", async () => {
    // A kind no Kiln has (yet): its job and WAV are written as such a kind would write them.
    const sampleRate = 16_000;
    const samples = Float32Array.from({ length: sampleRate * 1.5 }, (_, i) => 0.4 * Math.sin((2 * Math.PI * 220 * i) / sampleRate));
    const wav = encodeWav(samples, { sampleRate, channels: 1, metadata: { prompt: 'a cello at dawn', seed: 7 } });
    const [{ id }] = await k.kiln.ds.query(
      `INSERT INTO jobs (kind, queue, status, current_step, progress, params, created_at, started_at, completed_at)
       VALUES ('foley', 'foley', 'COMPLETED', 'COMPLETED', 1, $1, now(), now(), now()) RETURNING id`,
      [{ prompt: 'a cello at dawn', durationSeconds: 1.5, seed: 7 }],
    );
    const key = `jobs/${id}/1/0.wav`;
    await k.kiln.storage.put(key, wav, 'audio/wav');
    await k.kiln.ds.query(
      `INSERT INTO job_outputs (job_id, index, media_type, storage_key, mime_type, bytes, sha256, metadata) VALUES ($1, 0, 'audio', $2, 'audio/wav', $3, $4, $5)`,
      [id, key, wav.length, crypto.createHash('sha256').update(wav).digest('hex'), { durationSeconds: 1.5, sampleRate, channels: 1, seed: 7 }],
    );

    await page.goto(`${k.url}/gallery`);
    const item = page.getByRole('listitem', { name: 'Completed: a cello at dawn' });
    const player = item.locator('audio[controls]');
    // The browser fetched the file from Kiln and decoded its header.
    await until(() => player.evaluate((a: HTMLAudioElement) => (a.readyState >= 1 ? Math.round(a.duration * 10) / 10 : 0)), 30_000).toBe(1.5);
    expect(await item.locator('.audio-duration').textContent()).toBe('1.5 s');
    expect(await item.getByRole('link', { name: 'Download' }).getAttribute('download')).toBe(`kiln-${id.slice(0, 8)}-1.wav`);
    await screenshot(page, 'gallery-audio');

    await item.locator('.gallery-caption').click();
    await until(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('a cello at dawn');
    const full = page.locator('.images .audio-output');
    await until(() => full.locator('figcaption').textContent()).toMatch(/^1\.5 s · 16000 Hz · mono · seed 7 · \d+ KB Download$/);
    expect(await page.locator('.parameters').textContent()).toContain('durationSeconds1.5');
    await screenshot(page, 'job-audio');
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('button', { name: 'Yes, delete' }).click();
    await until(() => page.url()).toBe(`${k.url}/gallery`);
    expect((await ok(k.gql('query($id: ID!) { job(id: $id) { id } }', { id }))).job).toBeNull();
    expect(errors).toEqual([]);
  });

  it('lists the workers live, with what each takes, holds and runs, and the queues no worker takes with why', async () => {
    await page.goto(`${k.url}/queue`);
    const worker = page.getByRole('region', { name: 'Workers' }).getByRole('listitem');
    await until(() => worker.count()).toBe(1);
    const facts = await worker.locator('.worker-facts').textContent();
    expect(facts).toContain('Kindsimage');
    expect(facts).toMatch(/Queues.*image\.builtin/);
    expect(facts).toContain('Providerscpu');
    expect(await worker.locator('.queue-row-head strong').textContent()).toBe(os.hostname());
    await until(() => worker.textContent()).toMatch(/last heartbeat \d+(\.\d)? m?s ago/);

    // A job it runs shows as its current job at its next report, and the model it holds for it.
    const running = await generate({ prompt: 'a long firing, watched', steps: 150, width: 1024, height: 1024, previews: false });
    await until(() => worker.locator('.worker-facts').textContent(), 30_000).toContain('Current joba long firing, watched');
    expect(await worker.locator('.worker-facts').textContent()).toMatch(/Models loaded.*kiln-builtin/);
    await ok(k.gql('mutation($id: ID!) { cancelJob(id: $id) { id } }', { id: running }));

    // A job of a kind no worker here takes (music) waits in a queue the page calls blocked, saying why.
    const { generateAudio } = await ok(k.gql('mutation($input: GenerateAudioInput!) { generateAudio(input: $input) { id } }', { input: { prompt: 'a cello, waiting', durationSeconds: 2 } }));
    const blocked = page.getByRole('region', { name: 'Blocked queues' }).getByRole('listitem', { name: 'Blocked queue audio.builtin-music' });
    await until(() => blocked.textContent(), 10_000).toContain('1 waiting');
    expect(await blocked.locator('.blocked-reason').textContent()).toMatch(/^none of the 1 running worker\(s\) takes audio\.builtin-music jobs/);
    await page.reload();
    const pending = page.getByRole('region', { name: 'Pending' }).locator(`[data-job-id="${generateAudio.id}"]`);
    await until(() => pending.textContent()).toContain('a cello, waiting');
    expect(await pending.textContent()).toContain('kiln-builtin-music · 2.0 s of music');
    await until(() => worker.locator('.worker-facts').textContent(), 30_000).toContain('Current jobidle');
    await screenshot(page, 'queue-workers');
    await ok(k.gql('mutation($id: ID!) { deleteJob(id: $id) }', { id: generateAudio.id }));
    expect(errors).toEqual([]);
  });
});
