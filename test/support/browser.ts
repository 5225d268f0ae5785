import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { describe, it } from 'vitest';

/** Debian's Chromium (`apt-get install -y chromium`); another build by KILN_TEST_CHROMIUM. */
export const CHROMIUM = process.env.KILN_TEST_CHROMIUM ?? '/usr/bin/chromium';
const present = fs.existsSync(CHROMIUM);
const required = process.env.CI === 'true';
let announced = false;

/**
 * A describe block that needs a real browser: it runs where Chromium is installed, fails under
 * CI=true where it is not, and elsewhere is skipped with one line saying how to run it.
 */
export function browserDescribe(name: string, body: () => void) {
  if (present) return describe(name, body);
  if (required) {
    return describe(name, () => {
      it('has a browser to run in', () => {
        throw new Error(`CI=true and there is no Chromium at ${CHROMIUM}: install it with \`apt-get install -y chromium\``);
      });
    });
  }
  if (!announced) console.log(`[browser tests skipped] no Chromium at ${CHROMIUM}: \`apt-get install -y chromium\` (or KILN_TEST_CHROMIUM=<path>) enables them`);
  announced = true;
  return describe.skip(name, body);
}

/**
 * Headless Chromium with a fresh profile. Without the background-networking switches it keeps
 * trying to reach Google's services, which a closed network refuses, many times a second.
 * (playwright passes --headless and a new --user-data-dir itself.)
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export const SCREENSHOTS = path.resolve(import.meta.dirname, '../../test-output/screenshots');

/** Saves a full-page screenshot under test-output/screenshots/. */
export async function screenshot(page: Page, name: string) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** A context whose page errors (uncaught exceptions, console errors) are collected for the test to check. */
export async function openContext(browser: Browser, options: Parameters<Browser['newContext']>[0] = {}) {
  const context: BrowserContext = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const errors: string[] = [];
  context.on('page', (page) => watchErrors(page, errors));
  return { context, errors };
}

export function watchErrors(page: Page, errors: string[]) {
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
}

/** A folder for the files a test hands the browser (uploads); remove it in the test's teardown. */
export const scratchDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-web-'));

export function writeFile(dir: string, name: string, bytes: Uint8Array | string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}
