import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Kiln, type StartOptions, startKiln } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createTestDatabase } from './database.js';
import { type GraphQLClient, httpClient } from './graphql.js';

export interface TestKiln {
  kiln: Kiln;
  url: string;
  dataDir: string;
  databaseUrl: string | undefined;
  gql: GraphQLClient;
  stop(): Promise<void>;
}

/**
 * Starts Kiln (API and worker in one process by default) on a fresh test database and a
 * temporary data folder. Settings default to fast test values and can be overridden.
 */
export async function startTestKiln(
  env: Record<string, string> = {},
  args: string[] = [],
  opts: { embeddedPostgres?: boolean } & StartOptions = {},
): Promise<TestKiln> {
  const dataDir = env.KILN_DATA_DIR ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-test-')));
  // The embedded server runs as the postgres user, which must be able to reach the data folder.
  await fs.chmod(dataDir, 0o755);
  const databaseUrl = opts.embeddedPostgres ? undefined : (env.DATABASE_URL ?? (await createTestDatabase()));
  const config = loadConfig(
    {
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      KILN_LOG_LEVEL: process.env.KILN_TEST_LOG ?? 'silent',
      KILN_RETRY_DELAY_MS: '0',
      KILN_WORKER_POLL_MS: '200',
      ...env,
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
      KILN_DATA_DIR: dataDir,
    },
    args,
  );
  const kiln = await startKiln(config, createLogger(config.logLevel), opts.kinds ? { kinds: opts.kinds } : {});
  const url = kiln.url ?? '';
  return {
    kiln,
    url,
    dataDir,
    databaseUrl,
    gql: httpClient(url),
    async stop() {
      await kiln.stop();
      if (!env.KILN_DATA_DIR) await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}
