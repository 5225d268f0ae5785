import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { browserDescribe, launchBrowser, openContext, screenshot } from '../support/browser.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { ensureWebAppBuilt } from '../support/web-build.js';
import { until } from '../support/web-page.js';

const KEY = 'web-test-key-0123456789';

browserDescribe('GraphiQL, in Chromium', () => {
  let k: TestKiln;
  let browser: Browser;

  beforeAll(async () => {
    await ensureWebAppBuilt();
    [k, browser] = await Promise.all([startTestKiln(), launchBrowser()]);
  });

  afterAll(async () => {
    await browser?.close();
    await k?.stop();
  });

  it('renders from Kiln alone, with no request leaving the machine, and opens on a Kiln example', async () => {
    const { context, errors } = await openContext(browser);
    const outside: string[] = [];
    await context.route('**/*', (route) => {
      const { hostname } = new URL(route.request().url());
      if (hostname === '127.0.0.1' || hostname === 'localhost') return route.continue();
      outside.push(route.request().url());
      return route.abort('internetdisconnected');
    });
    const page = await context.newPage();
    await page.goto(`${k.url}/graphql`);
    await page.locator('.graphiql-container').first().waitFor({ timeout: 30_000 });
    await until(() => page.locator('.graphiql-query-editor').textContent(), 30_000).toContain('generationProgress');
    expect(await page.title()).toBe('Kiln');

    // Run the example: the mutation over HTTP, then its progress over graphql-ws.
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    const run = async (operation: string) => {
      await page.locator('.graphiql-execute-button').click();
      await page.getByRole('menuitem', { name: operation }).click();
    };
    await run('Generate');
    const response = page.locator('.graphiql-response');
    await until(() => response.textContent(), 30_000).toMatch(/"id":\s"[0-9a-f-]{36}"/);
    const id = /"id":\s"([0-9a-f-]{36})"/.exec((await response.textContent())!)![1]!;
    await page.locator('.graphiql-editor-tool .graphiql-editor').first().click();
    await page.keyboard.type(`{"id": "${id}"}`);
    await run('Progress');
    await until(() => response.textContent(), 30_000).toContain('"COMPLETED"');
    expect(sockets).toEqual([`${k.url.replace('http', 'ws')}/graphql`]);
    await screenshot(page, 'graphiql');
    expect(outside).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });
});

browserDescribe('the web app with API keys, in Chromium', () => {
  let k: TestKiln;
  let browser: Browser;

  beforeAll(async () => {
    await ensureWebAppBuilt();
    [k, browser] = await Promise.all([startTestKiln({ KILN_API_KEYS: `web:${KEY}` }), launchBrowser()]);
  });

  afterAll(async () => {
    await browser?.close();
    await k?.stop();
  });

  it('asks for a key, says when Kiln refuses one, keeps the one it takes and sends it over HTTP and WebSocket', async () => {
    const { context, errors } = await openContext(browser);
    const page = await context.newPage();
    await page.goto(`${k.url}/`);
    await until(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('API key');
    await screenshot(page, 'api-key');

    await page.getByLabel('Key', { exact: true }).fill('not-the-key');
    await page.getByRole('button', { name: 'Use this key' }).click();
    await until(() => page.getByRole('alert').textContent()).toContain('Kiln refused this key');

    await page.getByLabel('Key', { exact: true }).fill(KEY);
    await page.getByRole('button', { name: 'Use this key' }).click();
    await until(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Generate');
    await until(() => page.getByLabel('Model').locator('option').first().textContent()).toBe('kiln-builtin (default)');
    expect(await page.evaluate(() => localStorage.getItem('kiln.apiKey'))).toBe(KEY);

    // The card's progress arrives over the WebSocket, which Kiln closes without a valid key.
    await page.getByLabel('Prompt', { exact: true }).fill('with a key');
    await page.getByLabel('Steps', { exact: true }).fill('3');
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    const card = page.getByRole('article', { name: 'Job: with a key' });
    await until(() => card.locator('.badge').textContent(), 30_000).toBe('Completed');
    await until(() => card.locator('.job-images img').count()).toBe(1);

    await page.reload();
    await until(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Generate');

    // A key Kiln no longer takes: the app says so and asks again.
    await page.evaluate(() => localStorage.setItem('kiln.apiKey', 'a-revoked-key'));
    await page.reload();
    await until(() => page.getByRole('alert').textContent()).toContain('Kiln refused the stored API key');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('API key');
    // The browser logs each refused request (HTTP 401) itself; nothing else went wrong.
    expect(errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
    await context.close();
  });
});
