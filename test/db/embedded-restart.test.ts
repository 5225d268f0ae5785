import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, ok, wsClient } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { GENERATE, GENERATION, PROGRESS } from '../support/operations.js';
import { freePort, spawnKiln } from '../support/processes.js';

describe('Kiln on its embedded Postgres', () => {
  let dataDir: string;
  let env: Record<string, string>;
  let k: TestKiln | undefined;

  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-embedded-'));
    // A fixed API port too: image links carry it, and they must survive the restart.
    env = { KILN_DATA_DIR: dataDir, KILN_EMBEDDED_PG_PORT: String(await freePort()), PORT: String(await freePort()) };
  });
  afterAll(async () => {
    await k?.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  const start = async (role: string) => (k = await startTestKiln(env, ['--role', role], { embeddedPostgres: true }));
  const stop = async () => {
    await k!.stop();
    k = undefined;
  };

  it('keeps a queued job across a restart and runs it when a worker starts', async () => {
    await start('api');
    const { generate } = await ok(k!.gql(GENERATE, { input: { prompt: 'kept across restarts', seed: 3 } }));
    await stop();

    await start('all');
    const client = wsClient(k!.url);
    await collect(client, PROGRESS, { id: generate.id });
    await client.dispose();
    const { generation } = await ok(k!.gql(GENERATION, { id: generate.id }));
    expect(generation.status).toBe('COMPLETED');
    await stop();

    await start('api');
    const again = (await ok(k!.gql(GENERATION, { id: generate.id }))).generation;
    expect(again).toMatchObject({ status: 'COMPLETED', images: [{ sha256: generation.images[0].sha256 }] });
    expect(again.events).toEqual(generation.events);
    // The signing key lives in the data folder, so links made before the restart still work.
    expect((await fetch(generation.images[0].url)).status).toBe(200);
    await stop();
  });

  it('refuses a second process on the same embedded database, then recovers it after the first was killed', async () => {
    const first = await spawnKiln({ ...env, PORT: String(await freePort()) });
    const { generate } = await ok(first.gql(GENERATE, { input: { prompt: 'before the crash', steps: 2 } }));
    await expect(startTestKiln(env, ['--role', 'api'], { embeddedPostgres: true })).rejects.toThrow(
      /embedded Postgres .* is run by Kiln process \d+.*DATABASE_URL/,
    );
    // Killed outright: its Postgres is left running, orphaned, until the next start stops it.
    await first.kill('SIGKILL');

    await start('api');
    const { generation } = await ok(k!.gql(GENERATION, { id: generate.id }));
    expect(generation.id).toBe(generate.id);
    await stop();
  });
});
