import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

const ROOT = path.resolve(import.meta.dirname, '../..');
const WEB = path.join(ROOT, 'web');
const BUILT = path.join(WEB, 'dist', 'index.html');
const LOCK = path.join(os.tmpdir(), `kiln-web-build-${Buffer.from(ROOT).toString('base64url').slice(-24)}.lock`);

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'dist' || entry.name === 'node_modules') continue;
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(full) : fs.statSync(full).mtimeMs);
  }
  return newest;
}

const stale = () => !fs.existsSync(BUILT) || fs.statSync(BUILT).mtimeMs < newestSource(WEB);

/**
 * The browser tests test the built app: `npm install` builds it; this builds it again when
 * web/ changed since (one test file at a time, the others wait for that build).
 */
export async function ensureWebAppBuilt(): Promise<void> {
  if (!stale()) return;
  for (let waited = 0; ; waited += 200) {
    try {
      fs.mkdirSync(LOCK);
      break;
    } catch {
      if (waited > 120_000) fs.rmSync(LOCK, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    if (!stale()) return;
    const run = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], {
      cwd: ROOT,
      // vitest sets NODE_ENV=test, which would make Vite bundle React's development build.
      env: { ...process.env, NODE_ENV: 'production' },
      encoding: 'utf8',
    });
    if (run.status !== 0) throw new Error(`the web app did not build:\n${run.stdout}${run.stderr}`);
  } finally {
    fs.rmSync(LOCK, { recursive: true, force: true });
  }
}

/** What a browser downloads of the built app: its JS and CSS, as served and gzipped (level 9, as Kiln serves it). */
export function bundleSize(): { raw: number; gzip: number } {
  const dir = path.join(WEB, 'dist', 'assets');
  let raw = 0;
  let gzip = 0;
  for (const name of fs.readdirSync(dir).filter((n) => /\.(js|css)$/.test(n))) {
    const bytes = fs.readFileSync(path.join(dir, name));
    raw += bytes.length;
    gzip += zlib.gzipSync(bytes, { level: 9 }).length;
  }
  return { raw, gzip };
}
