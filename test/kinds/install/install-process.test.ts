import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../support/database.js';
import { FakeHub } from '../../support/fake-hub.js';
import { ok, wsClient } from '../../support/graphql.js';
import { installAndWait } from '../../support/installs.js';
import type { TestKiln } from '../../support/kiln.js';
import { type KilnProcess, spawnKiln } from '../../support/processes.js';
import { buildSdFixture } from '../../support/sd-fixtures.js';

const TOKEN = 'hf_kiln_test_token_0123456789abcdef';

/** `npm run model:install -- …` from the repository root: its exit code and output. */
function modelInstall(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '-s', 'model:install', '--', ...args], { cwd: path.resolve(import.meta.dirname, '../../..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Kiln as `npm start` runs it, with a hub token and every log line kept (at debug level). */
describe('installs from a gated hub repository, in a Kiln process of its own', () => {
  let hub: FakeHub;
  let kiln: KilnProcess;
  let dataDir: string;
  let k: TestKiln;

  beforeAll(async () => {
    hub = await FakeHub.start();
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-install-process-'));
    kiln = await spawnKiln({
      DATABASE_URL: await createTestDatabase(),
      KILN_DATA_DIR: dataDir,
      KILN_LOG_LEVEL: 'debug',
      KILN_HF_ENDPOINT: hub.url,
      KILN_HF_TOKEN: TOKEN,
      KILN_INSTALL_ALLOW_HTTP: 'true',
      KILN_MIN_FREE_DISK_GB: '0',
      KILN_RETRY_DELAY_MS: '0',
    });
    // What installAndWait needs of a test Kiln: its URL and a GraphQL client.
    k = { url: kiln.url!, gql: kiln.gql } as TestKiln;
  });
  afterAll(async () => {
    await kiln?.kill('SIGTERM');
    await hub?.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('sends the token to the hub alone, never to its file host, and never writes it in a log line or an error', async () => {
    hub.addRepo('kiln/gated-sd', buildSdFixture({ layout: 'optimum' }), { token: TOKEN });
    hub.addRepo('kiln/other-gate', buildSdFixture({ layout: 'ort-turbo' }), { token: 'hf_someone_elses_token_000000' });
    const client = wsClient(kiln.url!);
    try {
      const { install } = await installAndWait(k, client, { source: 'hf:kiln/gated-sd' });
      expect(install).toMatchObject({ status: 'COMPLETED', model: { pipeline: 'stable-diffusion-onnx' } });
      const refused = await installAndWait(k, client, { source: 'hf:kiln/other-gate' });
      expect(refused.install).toMatchObject({ status: 'FAILED', error: { code: 'SOURCE_UNAUTHORIZED' } });
      expect(refused.install.error.message).toMatch(/the token in KILN_HF_TOKEN may not read it/);

      const hubRequests = hub.served.filter((s) => s.host === 'hub');
      const fileRequests = hub.served.filter((s) => s.host === 'files');
      expect(hubRequests.length).toBeGreaterThan(0);
      expect(hubRequests.every((s) => s.authorization === `Bearer ${TOKEN}`)).toBe(true);
      expect(fileRequests.length).toBeGreaterThan(0);
      expect(fileRequests.every((s) => s.authorization === undefined)).toBe(true);

      const { jobs } = await ok(kiln.gql(`{ jobs(first: 10, kind: "install") { edges { node { params error { message } events { message detail } attempts { error { message } } } } } }`));
      expect(JSON.stringify(jobs)).not.toContain(TOKEN);
      expect(kiln.logs.some((l) => l.kind === 'install')).toBe(true);
      expect(JSON.stringify(kiln.logs)).not.toContain(TOKEN);
    } finally {
      await client.dispose();
    }
  });

  it('installs from the command line, printing its progress and the model it made', async () => {
    hub.addRepo('kiln/cli-sd', buildSdFixture({ layout: 'optimum', fixedBatch: 2 }), { token: TOKEN });
    const { code, stdout, stderr } = await modelInstall(['hf:kiln/cli-sd', '--name', 'cli model', '--url', kiln.url!]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/installing hf:kiln\/cli-sd as "cli model" \(job [0-9a-f-]{36}\)/);
    expect(stdout).toMatch(/\] +\d+% [\d.]+ KiB \/ [\d.]+ KiB .*DOWNLOADING: Downloading/);
    expect(stdout).toMatch(/\[#+\] 100% .*COMPLETED/);
    expect(stdout).toMatch(/model cli model \([0-9a-f-]{36}\): BASE, pipeline stable-diffusion-onnx, \d+ bytes/);

    const help = await modelInstall(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: model:install SOURCE [options]');
    const failed = await modelInstall(['hf:kiln/no-such-repo', '--url', kiln.url!]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/model:install: FAILED \(SOURCE_UNAUTHORIZED\)/);
  });
});
