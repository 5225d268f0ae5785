import { expect } from 'vitest';
import type { Page } from 'playwright-core';

/** The page's first contentful paint, in ms from navigation start, as the browser measured it. */
export function firstContentfulPaint(page: Page): Promise<number> {
  return page.evaluate(
    () =>
      new Promise<number>((resolve) => {
        new PerformanceObserver((list, observer) => {
          const entry = list.getEntriesByName('first-contentful-paint')[0];
          if (entry) {
            observer.disconnect();
            resolve(entry.startTime);
          }
        }).observe({ type: 'paint', buffered: true });
      }),
  );
}

/** What the page showed of one job card while it ran, with times from performance.now(). */
export interface SeenCard {
  id: string;
  /** The form's submit click. */
  submittedAt: number;
  /** The card's first text from an event (it says "Connecting…" until then). */
  firstEventAt: number | undefined;
  /** The first "step i/N" (music: "frame i/N"). */
  firstStepAt: number | undefined;
  /** Every distinct value of its progress bar, in the order shown. */
  progress: number[];
  /** Every distinct text of its step line. */
  steps: string[];
  /** How many different preview images it showed. */
  previews: number;
  seed: string;
}

/**
 * Watches the job cards that appear after the next click on the Generate button, from inside
 * the page (a MutationObserver sees each change as the app renders it). Returns a function that
 * reads what was seen.
 */
export async function recordJobCards(page: Page): Promise<() => Promise<SeenCard[]>> {
  await page.evaluate(() => {
    const before = new Set([...document.querySelectorAll('article.job')].map((a) => a.getAttribute('data-job-id')));
    const cards = new Map<string, SeenCard & { previewSrcs: Set<string> }>();
    let submittedAt = 0;
    document.querySelector('form[aria-label="Generate"] button[type="submit"]')!.addEventListener('click', () => (submittedAt = performance.now()), { capture: true, once: true });
    const look = () => {
      const now = performance.now();
      for (const article of document.querySelectorAll('article.job')) {
        const id = article.getAttribute('data-job-id')!;
        if (before.has(id)) continue;
        let card = cards.get(id);
        if (!card) {
          card = { id, submittedAt, firstEventAt: undefined, firstStepAt: undefined, progress: [], steps: [], previews: 0, seed: '', previewSrcs: new Set() };
          cards.set(id, card);
        }
        const value = Number(article.querySelector('[role="progressbar"]')?.getAttribute('aria-valuenow'));
        if (card.progress.at(-1) !== value) card.progress.push(value);
        const step = article.querySelector('.job-step')?.textContent ?? '';
        if (card.steps.at(-1) !== step) card.steps.push(step);
        if (step !== 'Connecting…' && step !== 'Queued') card.firstEventAt ??= now;
        if (/(step|frame) \d+\//.test(step)) card.firstStepAt ??= now;
        const preview = article.querySelector<HTMLImageElement>('.job-preview')?.src;
        if (preview?.startsWith('data:image/')) card.previewSrcs.add(preview);
        card.previews = card.previewSrcs.size;
        card.seed = article.querySelector('.job-actions .muted')?.textContent ?? '';
      }
    };
    new MutationObserver(look).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    (window as unknown as { __kilnSeen: () => SeenCard[] }).__kilnSeen = () => [...cards.values()].map(({ previewSrcs: _, ...c }) => c);
  });
  return () => page.evaluate(() => (window as unknown as { __kilnSeen: () => SeenCard[] }).__kilnSeen());
}

/** Polls what the page shows until it matches (vitest's expect.poll, with a browser's patience). */
export const until = <T>(read: () => Promise<T> | T, timeout = 20_000) => expect.poll(read, { timeout, interval: 50 });
