import fs from 'node:fs';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { browserDescribe, launchBrowser, openContext, scratchDir, screenshot, writeFile } from '../support/browser.js';
import { ok } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { paint, PICTURES } from '../support/training-datasets.js';
import { ensureWebAppBuilt } from '../support/web-build.js';
import { until } from '../support/web-page.js';
import { zipOf } from '../support/zip-files.js';

interface SentFile {
  name: string;
  bytes: Uint8Array;
}

/** What the training page showed while it ran: each distinct count of loss points and of samples, and each step text. */
interface SeenTraining {
  points: number[];
  samples: number[];
  steps: string[];
  /** performance.now() of the Train click, and of the first loss point drawn. */
  submittedAt: number;
  firstPointAt: number | undefined;
}

/** A training small enough to be quick on the built-in trainer, long enough to be watched. */
const TRAINING = { steps: 40, resolution: 32, batchSize: 2, sampleEvery: 10 };

browserDescribe('training in the web app, in Chromium', () => {
  let k: TestKiln;
  let browser: Browser;
  let context: BrowserContext;
  let errors: string[];
  let page: Page;
  let scratch: string;
  let pictures: SentFile[];
  let trainingId: string;

  beforeAll(async () => {
    scratch = scratchDir();
    await ensureWebAppBuilt();
    [k, browser] = await Promise.all([startTestKiln(), launchBrowser()]);
    ({ context, errors } = await openContext(browser));
    page = await context.newPage();
    pictures = [];
    for (const [i, p] of PICTURES.slice(0, 5).entries()) {
      pictures.push({ name: `pic${i + 1}.png`, bytes: await paint(p.paint, 64) }, { name: `pic${i + 1}.txt`, bytes: Buffer.from(p.caption) });
    }
  });

  afterAll(async () => {
    await browser?.close();
    await k?.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  const field = (label: string, within: Page | Locator = page) => within.getByLabel(label, { exact: true });

  /** Drops files on the element as a desktop drag would: a drop event whose DataTransfer holds them. */
  async function dropFiles(target: Locator, files: SentFile[]) {
    const data = await page.evaluateHandle(
      (list) => {
        const transfer = new DataTransfer();
        for (const f of list) transfer.items.add(new File([Uint8Array.from(atob(f.base64), (c) => c.charCodeAt(0))], f.name));
        return transfer;
      },
      files.map((f) => ({ name: f.name, base64: Buffer.from(f.bytes).toString('base64') })),
    );
    for (const type of ['dragenter', 'dragover', 'drop']) await target.dispatchEvent(type, { dataTransfer: data });
  }

  it("creates a dataset by drag and drop: each file Kiln refuses shows why beside it while the others are listed, and without them the dataset is made", async () => {
    await page.goto(`${k.url}/train`);
    const form = page.getByRole('form', { name: 'New dataset' });
    await field('Name', form).fill('pictures');
    // Damaged past its header: only decoding it finds that out, so Kiln reads it to refuse it.
    const broken = { name: 'broken.png', bytes: (await paint(PICTURES[5]!.paint, 64)).subarray(0, 80) };
    const notes = { name: 'notes.pdf', bytes: Buffer.from('%PDF-1.4') };
    await dropFiles(form.locator('.drop-zone'), [...pictures, broken, notes]);
    const files = form.getByRole('list', { name: 'Files to send' }).getByRole('listitem');
    await until(() => files.count()).toBe(12);
    expect(await form.getByRole('listitem', { name: 'pic1.png' }).textContent()).toContain('image, caption pic1.txt');

    await form.getByRole('button', { name: 'Create dataset' }).click();
    const refusal = form.getByRole('listitem', { name: 'broken.png' }).getByRole('alert');
    // Listed and sent by name, so it is the first file of the request.
    await until(() => refusal.textContent(), 20_000).toContain('Kiln refused the input (files.0)');
    expect(await refusal.textContent()).toMatch(/broken\.png .*BAD_USER_INPUT$/);
    // Every file was checked: the other refused one says why too, in the same answer.
    const notesRefusal = form.getByRole('listitem', { name: 'notes.pdf' }).getByRole('alert');
    expect(await notesRefusal.textContent()).toMatch(/Kiln refused the input \(files\.1\).*notes\.pdf is neither/);
    // Only those files say so; the others stay listed, and nothing was kept.
    expect(await files.getByRole('alert').count()).toBe(2);
    expect(await files.count()).toBe(12);
    expect(await form.locator(':scope > .problems').count()).toBe(0);
    expect((await ok(k.gql('{ datasets { edges { node { id } } } }'))).datasets.edges).toEqual([]);
    await screenshot(page, 'train-dataset-refused');

    await form.getByRole('button', { name: 'Remove broken.png' }).click();
    await form.getByRole('button', { name: 'Remove notes.pdf' }).click();
    await form.getByRole('button', { name: 'Create dataset' }).click();
    await until(() => form.getByRole('status').textContent(), 20_000).toBe('Created dataset “pictures”: 5 images, the smallest 64 px on its short side.');
    const row = page.getByRole('region', { name: 'Datasets' }).getByRole('listitem', { name: 'pictures' });
    await until(() => row.locator('.model-facts').textContent()).toContain('Images5');
    expect(await row.getByRole('list', { name: 'Images of pictures' }).getByRole('img').count()).toBe(5);
    // Served from storage after the list arrives: loaded once the browser has fetched it.
    await until(() => row.getByRole('img', { name: 'pic1.png: a red square' }).evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(64);
    expect(errors).toEqual([]);
  });

  it('sends a zip by direct upload, chosen with the file picker', async () => {
    const form = page.getByRole('form', { name: 'New dataset' });
    await field('Name', form).fill('zipped');
    await form.getByLabel('direct upload').check();
    const zip = zipOf(pictures.map((p) => ({ name: `set/${p.name}`, data: p.bytes })));
    await form.getByLabel('Or choose files').setInputFiles(writeFile(scratch, 'pictures.zip', zip));
    expect(await form.getByRole('listitem', { name: 'pictures.zip' }).textContent()).toContain('zip of images and captions');
    await form.getByRole('button', { name: 'Create dataset' }).click();
    await until(() => form.getByRole('status').textContent(), 20_000).toMatch(/^Created dataset “zipped”: 5 images/);
    const { datasets } = await ok(k.gql('{ datasets { edges { node { name imageCount images { name } } } } }'));
    expect(datasets.edges.map((e: { node: unknown }) => e.node)).toContainEqual({ name: 'zipped', imageCount: 5, images: pictures.filter((p) => p.name.endsWith('.png')).map((p) => ({ name: `set/${p.name}` })) });
    expect(errors).toEqual([]);
  });

  it('trains a LoRA from the form: the loss chart gains points and the samples appear as it trains; Generate with this LoRA opens a prefilled form whose image uses it', async () => {
    const form = page.getByRole('form', { name: 'Train a LoRA' });
    await field('Dataset', form).selectOption({ label: 'pictures (5 images)' });
    expect(await field('Base model', form).locator('option').allTextContents()).toEqual(['kiln-builtin (default)']);
    // The trainer's defaults are the placeholders.
    expect(await field('Steps', form).getAttribute('placeholder')).toBe('200');
    expect(await field('Resolution', form).getAttribute('placeholder')).toBe('32');
    expect(await field('Resolution', form).getAttribute('max')).toBe('128');
    await field('Name', form).fill('glaze');
    await field('Trigger word', form).fill('kilnglaze');
    for (const [label, value] of [['Steps', TRAINING.steps], ['Resolution', TRAINING.resolution], ['Batch size', TRAINING.batchSize], ['Samples every', TRAINING.sampleEvery], ['Seed', 5]] as const) await field(label, form).fill(String(value));
    expect(await field('Checkpoint every', form).getAttribute('placeholder')).toBe(String(TRAINING.steps / 10));

    // Watched from inside the page: every change the app renders (the page comes by client-side navigation).
    await page.evaluate(() => {
      const seen: SeenTraining = { points: [], samples: [], steps: [], submittedAt: 0, firstPointAt: undefined };
      document.querySelector('form[aria-label="Train a LoRA"] button[type="submit"]')!.addEventListener('click', () => (seen.submittedAt = performance.now()), { capture: true, once: true });
      const look = () => {
        const svg = document.querySelector('.loss-chart svg');
        if (!svg) return;
        const points = Number(svg.getAttribute('data-points'));
        if (points > 0) seen.firstPointAt ??= performance.now();
        if (seen.points.at(-1) !== points) seen.points.push(points);
        const samples = document.querySelectorAll('.samples img').length;
        if (seen.samples.at(-1) !== samples) seen.samples.push(samples);
        const step = document.querySelector('.training .job-step')?.textContent ?? '';
        if (seen.steps.at(-1) !== step) seen.steps.push(step);
      };
      new MutationObserver(look).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
      (window as unknown as { __seen: SeenTraining }).__seen = seen;
    });
    await form.getByRole('button', { name: 'Train' }).click();
    await until(() => page.url()).toMatch(/\/train\/[0-9a-f-]{36}$/);
    trainingId = page.url().split('/').pop()!;
    await until(() => page.locator('.training .badge').textContent(), 60_000).toBe('Completed');
    const seen = await page.evaluate(() => (window as unknown as { __seen: SeenTraining }).__seen);

    const { training } = await ok(k.gql('query($id: ID!) { training(id: $id) { status steps loss { step loss } events { detail preview } adapter: model { name triggerWord } } }', { id: trainingId }));
    const samples = training.events.filter((e: { detail: { sampleStep?: number } | null; preview: string | null }) => e.detail?.sampleStep && e.preview).length;
    expect(training).toMatchObject({ status: 'COMPLETED', steps: TRAINING.steps, adapter: { name: 'glaze', triggerWord: 'kilnglaze' } });
    expect(training.loss).toHaveLength(TRAINING.steps);
    expect(samples).toBe(TRAINING.steps / TRAINING.sampleEvery);
    // The curve grew in several steps while it trained, never shrinking, to every step's loss; the samples came one set at a time.
    expect(seen.points.at(-1)).toBe(TRAINING.steps);
    expect([...seen.points].sort((a, b) => a - b)).toEqual(seen.points);
    expect(seen.points.filter((n) => n > 0 && n < TRAINING.steps).length).toBeGreaterThan(1);
    expect(seen.samples.at(-1)).toBe(samples);
    expect(seen.samples.filter((n) => n > 0 && n < samples).length).toBeGreaterThan(0);
    expect(seen.steps.some((s) => new RegExp(`^Training · step \\d+/${TRAINING.steps}`).test(s))).toBe(true);
    const last = training.loss.at(-1);
    expect(await page.getByRole('img', { name: /^Loss per step/ }).getAttribute('aria-label')).toBe(`Loss per step: ${TRAINING.steps} points, ${last.loss.toPrecision(2)} at step ${TRAINING.steps} of ${TRAINING.steps}`);
    await screenshot(page, 'training');
    console.log(
      `[web] Train → first loss point drawn: ${(seen.firstPointAt! - seen.submittedAt).toFixed(0)} ms; the chart redrawn ${seen.points.length - 1} times over ${TRAINING.steps} steps, ` +
        `${seen.samples.length - 1} sets of samples added as they came`,
    );

    // A reload replays the stored events: the same curve and samples.
    await page.reload();
    await until(() => page.locator('.loss-chart svg').getAttribute('data-points')).toBe(String(TRAINING.steps));
    await until(() => page.locator('.samples img').count()).toBe(samples);
    expect(await page.locator('.samples img').first().getAttribute('alt')).toMatch(/^Samples at step 10: "kilnglaze", "kilnglaze, a red square"$/);
    await until(() => page.locator('.samples img').first().evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);

    await page.getByRole('button', { name: 'Generate with this LoRA' }).click();
    await until(() => page.url()).toBe(`${k.url}/`);
    await until(() => field('Adapter').locator('option:checked').textContent()).toBe('glaze');
    expect(await field('Model').locator('option:checked').textContent()).toBe('kiln-builtin (default)');
    expect(await field('Prompt').inputValue()).toBe('kilnglaze, ');
    expect(await page.locator('#prompt-hint').textContent()).toContain('trigger word: kilnglaze');
    await field('Prompt').press('End');
    await field('Prompt').pressSequentially('a lighthouse at dusk');
    for (const [label, value] of [['Steps', '4'], ['Width', '64'], ['Height', '64']]) await field(label!).fill(value!);
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    const card = page.getByRole('article', { name: 'Job: kilnglaze, a lighthouse at dusk' });
    await until(() => card.locator('.badge').textContent(), 30_000).toBe('Completed');
    await until(() => card.locator('.job-images img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(64);
    const { generation } = await ok(k.gql('query($id: ID!) { generation(id: $id) { prompt lora { name } loraWeight } }', { id: await card.getAttribute('data-job-id') }));
    expect(generation).toEqual({ prompt: 'kilnglaze, a lighthouse at dusk', lora: { name: 'glaze' }, loraWeight: 1 });
    expect(errors).toEqual([]);
  });

  it('shows trainings in the gallery with their parameters, loss and samples, and Generate with this LoRA', async () => {
    await page.goto(`${k.url}/gallery`);
    await page.getByLabel('Kind', { exact: true }).selectOption({ label: 'Trainings' });
    const item = page.getByRole('listitem', { name: 'Completed: LoRA training: glaze' });
    await until(() => page.locator('.gallery-item').count()).toBe(1);
    await item.locator('.gallery-caption').click();
    await until(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('LoRA training: glaze');
    const parameters = await page.locator('.parameters').textContent();
    for (const text of ['Trigger wordkilnglaze', 'Datasetpictures (5 images)', 'Base modelkiln-builtin', 'Trainerbuiltin', `Steps${TRAINING.steps}`, `Resolution${TRAINING.resolution}×${TRAINING.resolution}`, 'Adapterglaze']) expect(parameters).toContain(text);
    // Its timing names the run for what it was.
    expect(parameters).toMatch(/Training[\d.]+ m?s/);
    expect(await page.getByRole('button', { name: 'Generate with this LoRA' }).count()).toBe(1);
    await screenshot(page, 'job-training');
    await page.getByRole('link', { name: 'Loss and samples' }).click();
    await until(() => page.url()).toBe(`${k.url}/train/${trainingId}`);
    await until(() => page.locator('.loss-chart svg').getAttribute('data-points')).toBe(String(TRAINING.steps));

    // Its adapter, among the models, says what it was trained on and leads back here.
    await page.getByRole('link', { name: 'Models' }).click();
    const adapter = page.getByRole('region', { name: 'LoRA adapters' }).getByRole('listitem', { name: 'glaze' });
    await until(() => adapter.locator('.model-facts').textContent()).toContain('Trained onpictures (builtin) · its training');
    await adapter.getByRole('link', { name: 'its training' }).click();
    await until(() => page.url()).toBe(`${k.url}/train/${trainingId}`);
    expect(errors).toEqual([]);
  });

  it('refuses to delete a dataset a training uses, showing the conflict, and cancels that training from its page', async () => {
    const { datasets } = await ok(k.gql('{ datasets { edges { node { id name } } } }'));
    const datasetId = datasets.edges.find((e: { node: { name: string } }) => e.node.name === 'pictures').node.id;
    const { trainLora } = await ok(k.gql('mutation($input: TrainLoraInput!) { trainLora(input: $input) { id } }', { input: { datasetId, name: 'long', triggerWord: 'kilnlong', steps: 100_000, resolution: 8, batchSize: 1, sampleEvery: 0, checkpointEvery: 0 } }));
    await page.goto(`${k.url}/train`);
    const listed = page.getByRole('region', { name: 'Trainings' }).getByRole('listitem', { name: 'LoRA training: long' });
    await until(() => listed.textContent(), 30_000).toMatch(/Running.*Training · step \d+\/100000/);
    const row = page.getByRole('region', { name: 'Datasets' }).getByRole('listitem', { name: 'pictures' });
    await row.getByRole('button', { name: 'Delete' }).click();
    await row.getByRole('button', { name: 'Yes, delete' }).click();
    await until(() => row.getByRole('alert').textContent()).toContain('Not possible in its current state');
    expect(await row.getByRole('alert').textContent()).toContain('CONFLICT');
    await screenshot(page, 'train');

    await listed.getByRole('link', { name: 'LoRA training: long' }).click();
    await until(() => page.locator('.training .job-step').textContent(), 30_000).toMatch(/^Training · step \d+\/100000/);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await until(() => page.locator('.training .badge').textContent(), 30_000).toBe('Cancelled');
    expect(await page.getByRole('button', { name: 'Generate with this LoRA' }).count()).toBe(0);
    expect((await ok(k.gql('query($id: ID!) { training(id: $id) { status model { id } } }', { id: trainLora.id }))).training).toEqual({ status: 'CANCELLED', model: null });
    expect(errors).toEqual([]);
  });

  it('fits a phone-width screen', async () => {
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    for (const [path, name] of [['/train', 'phone-train'], [`/train/${trainingId}`, 'phone-training']] as const) {
      await phone.goto(`${k.url}${path}`);
      await phone.getByRole('heading', { level: 1 }).waitFor();
      if (path !== '/train') await until(() => phone.locator('.loss-chart svg').getAttribute('data-points')).toBe(String(TRAINING.steps));
      expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      await screenshot(phone, name);
    }
    await phone.close();
    expect(errors).toEqual([]);
  });
});

