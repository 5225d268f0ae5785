import { describe, expect, it } from 'vitest';
import { SessionCache } from '../../src/models/session-cache.js';
import type { LoadedPipeline } from '../../src/pipelines/pipeline.js';

/** A loaded model of a given size that records its release (what the cache manages). */
function model(name: string, sizeBytes: number, released: string[]): LoadedPipeline {
  return {
    sizeBytes,
    generate: () => Promise.reject(new Error('not used')),
    release: async () => void released.push(name),
  };
}

describe('the session cache', () => {
  it('loads once and serves the same loaded model again', async () => {
    const released: string[] = [];
    const cache = new SessionCache({ budgetBytes: 100, keepAliveMs: 60_000 });
    let loads = 0;
    const load = async () => (loads++, model('a', 10, released));
    const first = await cache.acquire('a', load);
    const [second, third] = await Promise.all([cache.acquire('a', load), cache.acquire('a', load)]);
    expect([first.cached, second.cached, third.cached]).toEqual([false, true, true]);
    expect(second.pipeline).toBe(first.pipeline);
    expect(loads).toBe(1);
    await cache.clear();
    expect(released).toEqual(['a']);
  });

  it('evicts the least recently used idle model to stay in its budget, never one in use', async () => {
    const released: string[] = [];
    const cache = new SessionCache({ budgetBytes: 25, keepAliveMs: 60_000 });
    const a = await cache.acquire('a', async () => model('a', 10, released));
    const b = await cache.acquire('b', async () => model('b', 10, released));
    await b.release();
    await a.release();
    // b was used longer ago than a: it goes first when c needs room.
    const c = await cache.acquire('c', async () => model('c', 10, released));
    expect(released).toEqual(['b']);
    expect(cache.keys.sort()).toEqual(['a', 'c']);
    // Both in use: d goes over the budget rather than evict them, and is evicted once idle.
    const a2 = await cache.acquire('a', async () => model('a', 10, released));
    const d = await cache.acquire('d', async () => model('d', 10, released));
    expect(released).toEqual(['b']);
    await d.release();
    expect(released).toEqual(['b', 'd']);
    await Promise.all([a2.release(), c.release()]);
    await cache.clear();
  });

  it('releases models left idle past their keep-alive, and only those', async () => {
    const released: string[] = [];
    const cache = new SessionCache({ budgetBytes: 100, keepAliveMs: 1000 });
    const idle = await cache.acquire('idle', async () => model('idle', 1, released));
    const busy = await cache.acquire('busy', async () => model('busy', 1, released));
    await idle.release();
    // The check runs every quarter of the keep-alive (at least every second).
    await expect.poll(() => released, { timeout: 5000 }).toEqual(['idle']);
    expect(cache.keys).toEqual(['busy']);
    await busy.release();
    await cache.clear();
  });
});
