import fs from 'node:fs';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MODELS_WITH_CAPABILITIES } from '../support/audio-operations.js';
import { browserDescribe, launchBrowser, openContext, scratchDir, screenshot } from '../support/browser.js';
import { ok } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { ensureWebAppBuilt } from '../support/web-build.js';
import { recordJobCards, until } from '../support/web-page.js';

interface Range {
  min: number;
  max: number;
  default: number;
}
interface MusicModel {
  id: string;
  name: string;
  modality: string;
  isDefault: boolean;
  capabilities: { durationSeconds: Range; guidanceScale: Range; topK: Range; temperature: Range; sampleRate: number; channels: number };
}

const AUDIO = `query($id: ID!) { audioGeneration(id: $id) { status prompt durationSeconds seed topK temperature model { name } audio { durationSeconds sampleRate } } }`;

browserDescribe('music in the web app, in Chromium', () => {
  let k: TestKiln;
  let browser: Browser;
  let errors: string[];
  let page: Page;
  let scratch: string;
  let music: MusicModel;

  beforeAll(async () => {
    scratch = scratchDir();
    await ensureWebAppBuilt();
    // An event for every frame, so that the card's bar has many values to show.
    [k, browser] = await Promise.all([startTestKiln({ KILN_PREVIEW_INTERVAL_MS: '0' }), launchBrowser()]);
    let context;
    ({ context, errors } = await openContext(browser));
    page = await context.newPage();
    const { models } = await ok(k.gql(MODELS_WITH_CAPABILITIES));
    music = models.edges.map((e: { node: MusicModel }) => e.node).find((m: MusicModel) => m.name === 'kiln-builtin-music');
  });

  afterAll(async () => {
    await browser?.close();
    await k?.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  const field = (label: string) => page.getByLabel(label, { exact: true });
  const attributes = (l: Locator) => l.evaluate((e: HTMLInputElement) => ({ min: e.min, max: e.max, step: e.step, placeholder: e.placeholder }));

  it("generates music from a form built from the music model's capabilities, live on its card to a player that loads the file", async () => {
    expect(music).toMatchObject({ modality: 'audio', isDefault: true });
    const caps = music.capabilities;
    await page.goto(`${k.url}/`);
    // The picker groups the models by what they make; the page opens on the default image model.
    await until(() => field('Model').locator('option:checked').textContent()).toBe('kiln-builtin (default)');
    expect(await field('Model').locator('optgroup').evaluateAll((groups) => groups.map((g) => [g.getAttribute('label'), [...g.querySelectorAll('option')].map((o) => o.textContent)]))).toEqual([
      ['Images', ['kiln-builtin (default)']],
      ['Music', ['kiln-builtin-music (default)']],
    ]);
    await field('Model').selectOption({ label: 'kiln-builtin-music (default)' });
    await until(() => field('Duration (s)').count()).toBe(1);
    expect(await field('Steps').count()).toBe(0);
    expect(await field('Width').count()).toBe(0);
    const want = (r: Range, step: string) => ({ min: String(r.min), max: String(r.max), step, placeholder: String(r.default) });
    expect(await attributes(field('Duration (s)'))).toEqual(want(caps.durationSeconds, 'any'));
    expect(await attributes(field('Guidance'))).toEqual(want(caps.guidanceScale, 'any'));
    expect(await attributes(field('Top-k'))).toEqual(want(caps.topK, '1'));
    expect(await attributes(field('Temperature'))).toEqual(want(caps.temperature, 'any'));
    expect(await page.locator('#prompt-hint').textContent()).toContain(`${caps.sampleRate} Hz mono`);

    await field('Prompt').fill('a waltz on a music box');
    await field('Duration (s)').fill('1.5');
    await page.getByLabel('Fixed').check();
    await field('Seed').fill('7');
    const seen = await recordJobCards(page);
    await page.getByRole('button', { name: 'Generate', exact: true }).click();

    const card = page.getByRole('article', { name: 'Job: a waltz on a music box' });
    await until(() => card.locator('.badge').textContent(), 30_000).toBe('Completed');
    const player = card.locator('audio[controls]');
    // The browser fetched the WAV from Kiln and read its length.
    await until(() => player.evaluate((a: HTMLAudioElement) => (a.readyState >= 1 ? Math.round(a.duration * 100) / 100 : 0)), 30_000).toBe(1.5);
    expect(await card.locator('.audio-duration').textContent()).toBe('1.5 s');
    await screenshot(page, 'generate-music');

    const [job] = await seen();
    expect(job!.seed).toBe('seed 7');
    // Progress from the frames: many values, never backwards, counted as frames, with the time left.
    expect(job!.progress.length).toBeGreaterThan(3);
    expect([...job!.progress].sort((a, b) => a - b)).toEqual(job!.progress);
    expect(job!.steps.some((s) => /^Generating · frame \d+\/\d+/.test(s))).toBe(true);
    expect(job!.steps.some((s) => /about .* left/.test(s))).toBe(true);
    console.log(`[web] music: submit → first progress event in the page: ${(job!.firstEventAt! - job!.submittedAt).toFixed(0)} ms, → first frame: ${(job!.firstStepAt! - job!.submittedAt).toFixed(0)} ms`);
    const { audioGeneration } = await ok(k.gql(AUDIO, { id: job!.id }));
    expect(audioGeneration).toMatchObject({ status: 'COMPLETED', prompt: 'a waltz on a music box', durationSeconds: 1.5, seed: 7, model: { name: 'kiln-builtin-music' } });
    expect(audioGeneration.audio).toEqual([{ durationSeconds: 1.5, sampleRate: caps.sampleRate }]);
    expect(errors).toEqual([]);
  });

  it('sends a batch of music jobs with seeds counting up, and shows the refusal of an input outside the range', async () => {
    // Past the model's longest duration: the browser would refuse it, so it is sent as Kiln would get it from a script.
    await field('Duration (s)').evaluate((e: HTMLInputElement) => e.removeAttribute('max'));
    await field('Duration (s)').fill(String(music.capabilities.durationSeconds.max + 1));
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    const form = page.getByRole('form', { name: 'Generate' });
    await until(() => form.locator('#durationSeconds-hint').textContent()).toContain('must be');
    expect(await form.getByRole('alert').textContent()).toMatch(/Kiln refused the input \(input\.durationSeconds\).*BAD_USER_INPUT/);

    await field('Duration (s)').fill('1');
    await field('Seed').fill('20');
    await field('Jobs (batch)').fill('2');
    await page.getByRole('button', { name: 'Generate 2 jobs' }).click();
    await until(() => page.locator('article.job').count()).toBe(3);
    await until(() => page.locator('.section-head .muted').textContent()).toMatch(/^batch: about .* of work$/);
    const cards = page.locator('article.job').filter({ has: page.locator('.badge-completed') });
    await until(() => cards.count(), 30_000).toBe(3);
    expect(await page.locator('article.job .job-actions .muted').allTextContents()).toEqual(['seed 20', 'seed 21', 'seed 7']);
    expect(errors).toEqual([]);
  });

  it('lists music in the gallery by its model, and its page has its settings and Generate again', async () => {
    await page.goto(`${k.url}/gallery`);
    await page.getByLabel('Model', { exact: true }).selectOption({ label: 'kiln-builtin-music' });
    const items = page.locator('.gallery-item');
    await until(() => items.count()).toBe(3);
    expect(await page.getByLabel('Kind', { exact: true }).inputValue()).toBe('audio');
    // Newest first: the first piece, of seed 7, is the last.
    await items.last().locator('.gallery-caption').click();
    await until(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('a waltz on a music box');
    const parameters = await page.locator('.parameters').textContent();
    for (const text of ['Modelkiln-builtin-music', 'Duration1.5 s', 'Seed7', `Top-k${music.capabilities.topK.default}`]) expect(parameters).toContain(text);
    await screenshot(page, 'job-music');
    await page.getByRole('button', { name: 'Generate again' }).click();
    await until(() => page.url()).toBe(`${k.url}/`);
    await until(() => field('Duration (s)').inputValue()).toBe('1.5');
    expect(await field('Model').locator('option:checked').textContent()).toBe('kiln-builtin-music (default)');
    expect(await field('Prompt').inputValue()).toBe('a waltz on a music box');
    expect(await field('Seed').inputValue()).toBe('7');
    expect(errors).toEqual([]);
  });
});
