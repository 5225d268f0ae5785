import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'graphql-yoga';
import type { Config } from '../config.js';
import { assetResponse, contentTypeFor, IMMUTABLE, makeAsset, notFoundResponse, REVALIDATE, type StaticAsset } from './static-files.js';

/** Where `npm run build:web` (run by `npm install`) puts the app. */
export const WEB_APP_DIR = fileURLToPath(new URL('../../web/dist/', import.meta.url));

/** What the app needs to know of this Kiln's settings that the API does not say. */
export interface WebAppSettings {
  maxBatch: number;
  maxMultipartBytes: number;
  maxUploadBytes: number;
  /** Every request needs an API key: the app asks for one before anything else. */
  apiKeys: boolean;
  graphiql: boolean;
}

export const webAppSettings = (config: Config): WebAppSettings => ({
  maxBatch: config.jobs.maxBatch,
  maxMultipartBytes: config.uploads.maxMultipartBytes,
  maxUploadBytes: config.uploads.maxUploadBytes,
  apiKeys: config.apiKeys.size > 0,
  graphiql: config.graphql.graphiql,
});

/** Paths the API answers itself; the app never shadows them, whatever their method. */
const API_PATHS = /^\/(graphql|graphiql|health|metrics|files|uploads|_yoga)(\/|$)/;
/** The app's index.html carries this element; the server fills it with the settings. */
const SETTINGS_SLOT = /<script id="kiln-settings" type="application\/json">[^<]*<\/script>/;

/**
 * Serves the web app at `/`: its hashed assets (`/assets/…`) cached for good, everything else
 * revalidated, and index.html for any other path without a file extension, so that the app's
 * own routes (`/queue`, `/gallery/<id>`, …) load it. Files are read from disk when they change.
 */
export function useWebApp(settings: WebAppSettings, dir = WEB_APP_DIR): Plugin {
  const cache = new Map<string, { mtimeMs: number; size: number; asset: StaticAsset }>();
  const settingsJson = JSON.stringify(settings).replace(/</g, '\\u003c');

  async function load(rel: string): Promise<StaticAsset | undefined> {
    const file = path.join(dir, rel);
    const stat = await fs.stat(file).catch(() => undefined);
    if (!stat?.isFile()) return undefined;
    const hit = cache.get(rel);
    if (hit && hit.mtimeMs === stat.mtimeMs && hit.size === stat.size) return hit.asset;
    const bytes = await fs.readFile(file);
    const body = rel !== 'index.html' ? bytes : bytes.toString('utf8').replace(SETTINGS_SLOT, `<script id="kiln-settings" type="application/json">${settingsJson}</script>`);
    const asset = await makeAsset(body, contentTypeFor(rel), rel.startsWith('assets/') ? IMMUTABLE : REVALIDATE);
    cache.set(rel, { mtimeMs: stat.mtimeMs, size: stat.size, asset });
    return asset;
  }

  return {
    async onRequest({ url, request, endResponse, fetchAPI }) {
      if ((request.method !== 'GET' && request.method !== 'HEAD') || API_PATHS.test(url.pathname)) return;
      let rel: string;
      try {
        rel = decodeURIComponent(url.pathname).slice(1);
      } catch {
        return endResponse(notFoundResponse(fetchAPI));
      }
      // Nothing above the folder (`..` decoded from %2f) and no dotfiles, whatever the path looks like.
      if (rel.includes('\0') || rel.split('/').some((part) => part.startsWith('.'))) return endResponse(notFoundResponse(fetchAPI));
      const isFile = path.posix.extname(rel) !== '';
      if (isFile && rel.split('/').includes('')) return endResponse(notFoundResponse(fetchAPI));
      const asset = await load(isFile ? rel : 'index.html');
      if (asset) return endResponse(assetResponse(fetchAPI, request, asset));
      if (isFile) return endResponse(notFoundResponse(fetchAPI));
      endResponse(notFoundResponse(fetchAPI, 'The web app is not built: run `npm run build:web` (npm install runs it).', 503));
    },
  };
}
