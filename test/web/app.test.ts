import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeBuiltinLora } from '../../src/models/builtin-lora.js';
import { browserDescribe, launchBrowser, openContext, scratchDir, screenshot, writeFile } from '../support/browser.js';
import { collect, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { writeSdFixture } from '../support/sd-fixtures.js';
import { GENERATE, PROGRESS } from '../support/operations.js';
import { bundleSize, ensureWebAppBuilt } from '../support/web-build.js';
import { firstContentfulPaint, recordJobCards, type SeenCard, until } from '../support/web-page.js';

/** A job that takes long enough to be cancelled from its card. */
const SLOW = { steps: '150', width: '512', height: '512' };

browserDescribe('the web app, in Chromium', () => {
  let k: TestKiln;
  let browser: Browser;
  let context: BrowserContext;
  let errors: string[];
  let page: Page;
  let scratch: string;

  beforeAll(async () => {
    scratch = scratchDir();
    await ensureWebAppBuilt();
    // A preview with every step, so that the card's picture changes as the job runs.
    [k, browser] = await Promise.all([startTestKiln({ KILN_PREVIEW_INTERVAL_MS: '0' }), launchBrowser()]);
    ({ context, errors } = await openContext(browser));
    await context.grantPermissions(['clipboard-read', 'clipboard-write']);
    page = await context.newPage();
    // The model's first load is not what the page's figures are about.
    const warm = await ok(k.gql(GENERATE, { input: { prompt: 'warm-up', steps: 1, width: 64, height: 64 } }));
    await waitUntilFinished([warm.generate.id]);
  });

  afterAll(async () => {
    await browser?.close();
    await k?.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  const waitUntilFinished = async (ids: string[]) => {
    const client = wsClient(k.url);
    await Promise.all(ids.map((id) => collect(client, PROGRESS, { id })));
    await client.dispose();
  };

  const fillForm = async (fields: Record<string, string>) => {
    for (const [label, value] of Object.entries(fields)) await page.getByLabel(label, { exact: true }).fill(value);
  };

  const newestCard = (): Locator => page.locator('article.job').first();

  it('submits the form and shows the job live: the progress bar moves, step i/N, the preview, then the image', async () => {
    await page.goto(`${k.url}/`);
    const paintMs = await firstContentfulPaint(page);
    await fillForm({ Prompt: 'a kiln glowing at dusk', Steps: '24', Width: '256', Height: '256' });
    await page.getByLabel('Fixed').check();
    await page.getByLabel('Seed', { exact: true }).fill('4242');
    const seen = await recordJobCards(page);
    await page.getByRole('button', { name: 'Generate', exact: true }).click();

    const card = newestCard();
    await until(() => card.locator('.badge').textContent(), 30_000).toBe('Completed');
    const result = card.locator('.job-images img');
    await until(() => result.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(256);
    await screenshot(page, 'generate');

    const job: SeenCard = (await seen())[0]!;
    expect(job.seed).toBe('seed 4242');
    // The bar moved through many values, never backwards, and the text counted the steps.
    expect(job.progress.length).toBeGreaterThan(5);
    expect([...job.progress].sort((a, b) => a - b)).toEqual(job.progress);
    expect(job.steps.some((s) => /step \d+\/24/.test(s))).toBe(true);
    expect(job.steps.some((s) => /about .* left/.test(s))).toBe(true);
    // Several different previews were shown while it ran.
    expect(job.previews).toBeGreaterThan(2);
    const gql = await ok(k.gql(`{ generations(first: 1) { edges { node { seed steps width status } } } }`));
    expect(gql.generations.edges[0].node).toEqual({ seed: 4242, steps: 24, width: 256, status: 'COMPLETED' });

    // The same path from a script, in the same run, for scale.
    const client = wsClient(k.url);
    const started = performance.now();
    const { generate } = await ok(k.gql(GENERATE, { input: { prompt: 'anchor', steps: 24, width: 256, height: 256 } }));
    let apiFirstEventMs = 0;
    let apiFirstStepMs = 0;
    await collect(client, PROGRESS, { id: generate.id }, (v: { generationProgress: { step: string } }) => {
      apiFirstEventMs ||= performance.now() - started;
      if (v.generationProgress.step === 'GENERATING') apiFirstStepMs ||= performance.now() - started;
    });
    await client.dispose();
    const bundle = bundleSize();
    console.log(
      `[web] first contentful paint of /: ${paintMs.toFixed(0)} ms\n` +
        `[web] submit → first progress event in the page: ${(job.firstEventAt! - job.submittedAt).toFixed(0)} ms, → first GENERATING step: ${(job.firstStepAt! - job.submittedAt).toFixed(0)} ms` +
        ` (anchor, a graphql-ws script: ${apiFirstEventMs.toFixed(0)} ms and ${apiFirstStepMs.toFixed(0)} ms)\n` +
        `[web] bundle (JS and CSS): ${(bundle.raw / 1024).toFixed(1)} KiB, gzip ${(bundle.gzip / 1024).toFixed(1)} KiB`,
    );
    expect(errors).toEqual([]);
  });

  it('cancels a running job from its card, with the keyboard alone', async () => {
    await page.goto(`${k.url}/`);
    await page.getByLabel('Random').check();
    await fillForm({ Prompt: 'a long firing', Steps: SLOW.steps, Width: SLOW.width, Height: SLOW.height });
    // From the prompt, Tab reaches the submit button; Enter sends the form.
    await page.getByLabel('Prompt', { exact: true }).focus();
    for (let i = 0; i < 40 && !(await page.evaluate(() => (document.activeElement as HTMLButtonElement | null)?.type === 'submit')); i++) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');

    const card = page.getByRole('article', { name: 'Job: a long firing' });
    await until(() => card.locator('.job-step').textContent(), 30_000).toMatch(/Generating · step \d+\/150/);
    await card.getByRole('button', { name: 'Cancel' }).focus();
    await page.keyboard.press('Enter');
    await until(() => card.locator('.badge').textContent(), 30_000).toBe('Cancelled');
    await until(() => card.getByRole('button', { name: 'Cancel' }).count()).toBe(0);
    const id = await card.getAttribute('data-job-id');
    const { generation } = await ok(k.gql(`query($id: ID!) { generation(id: $id) { status images { url } } }`, { id }));
    expect(generation).toEqual({ status: 'CANCELLED', images: [] });
    expect(errors).toEqual([]);
  });

  it('pages through the gallery, opens a generation, copies its parameters, generates it again and deletes it', async () => {
    // One at a time: each gets its own creation time, so the newest-first order is theirs.
    const ids: string[] = [];
    for (let i = 0; i < 13; i++) ids.push((await ok(k.gql(GENERATE, { input: { prompt: `gallery ${i + 1}`, steps: 1, width: 64, height: 64, seed: 100 + i } }))).generate.id);
    await waitUntilFinished(ids);
    const completed = (await ok(k.gql('{ queueStats { completed } }'))).queueStats.completed as number;
    expect(completed).toBeGreaterThan(12);

    await page.goto(`${k.url}/gallery`);
    const items = page.locator('.gallery-item');
    await until(() => items.count()).toBe(12);
    await until(() => items.first().getAttribute('aria-label')).toBe('Completed: gallery 13');
    await screenshot(page, 'gallery');
    await page.getByRole('button', { name: 'Older →' }).click();
    await until(() => items.count()).toBe(Math.min(12, completed - 12));
    await until(() => items.first().getAttribute('aria-label')).toBe('Completed: gallery 1');
    await page.getByRole('button', { name: '← Newer' }).click();
    await until(() => items.count()).toBe(12);
    await page.getByLabel('Status').selectOption('CANCELLED');
    await until(() => items.count()).toBe(1);
    await until(() => items.first().getAttribute('aria-label')).toBe('Cancelled: a long firing');
    await page.getByLabel('Status').selectOption('COMPLETED');

    await items.first().locator('.gallery-caption').click();
    await until(() => page.url()).toMatch(/\/gallery\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').pop()!;
    await until(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('gallery 13');
    const image = page.getByRole('img', { name: 'Image 1 of "gallery 13", seed 112' });
    await until(() => image.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(64);
    expect(await page.getByRole('link', { name: 'Download' }).getAttribute('download')).toMatch(/\.png$/);
    expect(await page.locator('.parameters').textContent()).toContain('Seed112');
    await screenshot(page, 'generation');

    await page.getByRole('button', { name: 'Copy parameters' }).click();
    await until(() => page.getByRole('status').textContent()).toBe('Parameters copied.');
    const copied = JSON.parse(await page.evaluate(() => navigator.clipboard.readText()));
    expect(copied).toMatchObject({ prompt: 'gallery 13', steps: 1, width: 64, height: 64, seed: 112, numImages: 1 });

    await page.getByRole('button', { name: 'Generate again' }).click();
    await until(() => page.url()).toBe(`${k.url}/`);
    await until(() => page.getByLabel('Prompt', { exact: true }).inputValue()).toBe('gallery 13');
    expect(await page.getByLabel('Seed', { exact: true }).inputValue()).toBe('112');
    expect(await page.getByLabel('Steps', { exact: true }).inputValue()).toBe('1');
    await page.goBack();

    await until(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('gallery 13');
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('button', { name: 'Yes, delete' }).click();
    await until(() => page.url()).toBe(`${k.url}/gallery`);
    await until(() => items.first().getAttribute('aria-label')).toBe('Completed: gallery 12');
    expect((await ok(k.gql(`query($id: ID!) { generation(id: $id) { id } }`, { id }))).generation).toBeNull();
    expect(errors).toEqual([]);
  });

  it('uploads models: a refused LoRA shows why; a real one arrives by direct upload, a base model folder file by file; a refused delete shows the conflict', async () => {
    await page.goto(`${k.url}/models`);
    const form = page.getByRole('form', { name: 'Upload a model' });
    await form.getByLabel('Name').fill('not a lora');
    await form.getByLabel('File').setInputFiles(writeFile(scratch, 'notes.safetensors', 'These are my notes, not a LoRA adapter.\n'.repeat(20)));
    await form.getByRole('button', { name: 'Upload' }).click();
    await until(() => form.getByRole('alert').textContent()).toContain('Kiln refused the input');
    expect(await form.getByRole('alert').textContent()).toContain('BAD_USER_INPUT');
    await screenshot(page, 'models-refused');

    await form.getByLabel('Name').fill('web lora');
    await form.getByLabel('Trigger word').fill('glaze');
    await form.getByLabel('direct upload').check();
    await form.getByLabel('File').setInputFiles(writeFile(scratch, 'web-lora.safetensors', makeBuiltinLora({ seed: 3 })));
    await form.getByRole('button', { name: 'Upload' }).click();
    await until(() => form.getByRole('status').textContent()).toBe('Uploaded web lora.');
    const loras = page.getByRole('region', { name: 'LoRA adapters' });
    await until(() => loras.getByRole('listitem', { name: 'web lora' }).textContent()).toContain('glaze');

    const builtin = page.getByRole('region', { name: 'Base models' }).getByRole('listitem').first();
    await builtin.getByRole('button', { name: 'Delete' }).click();
    await builtin.getByRole('button', { name: 'Yes, delete' }).click();
    await until(() => builtin.getByRole('alert').textContent()).toContain('Not possible in its current state');
    expect(await builtin.getByRole('alert').textContent()).toContain('CONFLICT');
    await screenshot(page, 'models');

    // The Generate form offers the adapter for its base model, with a weight.
    await page.getByRole('link', { name: 'Generate' }).first().click();
    await page.getByLabel('Adapter').selectOption({ label: 'web lora' });
    await until(() => page.getByLabel(/^Weight/).isEnabled()).toBe(true);
    expect(await page.locator('#prompt-hint').textContent()).toContain('trigger word: glaze');

    await page.goto(`${k.url}/models`);
    // A base model is a folder, sent file by file; the form then offers its pipeline's schedulers.
    await form.getByLabel('Base model (an ONNX folder)').check();
    await form.getByLabel('Name').fill('tiny sd');
    const folder = await writeSdFixture(path.join(scratch, 'tiny-sd'), { layout: 'optimum' });
    await form.getByLabel('Folder', { exact: true }).setInputFiles(folder);
    await form.getByRole('button', { name: 'Upload' }).click();
    await until(() => form.getByRole('status').textContent(), 30_000).toBe('Uploaded tiny sd.');
    const tiny = page.getByRole('region', { name: 'Base models' }).getByRole('listitem', { name: 'tiny sd' });
    await until(() => tiny.textContent()).toContain('stable-diffusion-onnx');
    await page.getByRole('link', { name: 'Generate' }).first().click();
    await page.getByLabel('Model').selectOption({ label: 'tiny sd' });
    expect(await page.getByLabel('Scheduler').locator('option').allTextContents()).toEqual(["the model's own (pndm)", 'euler', 'euler ancestral', 'ddim', 'lcm', 'pndm']);

    await page.goto(`${k.url}/models`);
    await tiny.getByRole('button', { name: 'Delete' }).click();
    await tiny.getByRole('button', { name: 'Yes, delete' }).click();
    await until(() => tiny.count()).toBe(0);
    const mine = loras.getByRole('listitem', { name: 'web lora' });
    await mine.getByRole('button', { name: 'Delete' }).click();
    await mine.getByRole('button', { name: 'Yes, delete' }).click();
    await until(() => loras.getByRole('listitem', { name: 'web lora' }).count()).toBe(0);
    expect(errors).toEqual([]);
  });

  it('shows the queue live and every health check', async () => {
    await page.goto(`${k.url}/queue`);
    const running = page.getByRole('region', { name: 'Running' });
    await page.getByLabel('Queue statistics').waitFor();
    const { generate } = await ok(k.gql(GENERATE, { input: { prompt: 'watched from the queue', steps: 150, width: 512, height: 512 } }));
    const row = running.locator(`[data-job-id="${generate.id}"]`);
    await until(() => row.textContent(), 30_000).toMatch(/step \d+\/150/);
    expect(await row.getByRole('progressbar').isVisible()).toBe(true);
    await screenshot(page, 'queue');
    await row.getByRole('button', { name: 'Cancel' }).click();
    await until(() => row.count(), 30_000).toBe(0);
    await until(() => page.getByLabel('Queue statistics').textContent()).toContain('Cancelled2');

    await page.getByRole('link', { name: 'Health' }).click();
    await until(() => page.url()).toBe(`${k.url}/status`);
    for (const check of ['database', 'queue', 'storage', 'disk']) await page.getByRole('listitem', { name: new RegExp(`^${check}: (healthy|degraded)`) }).waitFor();
    await screenshot(page, 'health');
    expect(errors).toEqual([]);
  });

  it('fits a phone-width screen', async () => {
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    for (const [path, name] of [['/', 'phone-generate'], ['/queue', 'phone-queue'], ['/gallery', 'phone-gallery'], ['/models', 'phone-models']] as const) {
      await phone.goto(`${k.url}${path}`);
      await phone.getByRole('heading', { level: 1 }).waitFor();
      expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      await screenshot(phone, name);
    }
    await phone.close();
    expect(errors).toEqual([]);
  });
});
