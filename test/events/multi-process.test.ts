import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/database.js';
import { collect, follow, ok, wsClient } from '../support/graphql.js';
import { GENERATE, PROGRESS, type ProgressEvent, progressOf, stepLabel } from '../support/operations.js';
import { freePort, type KilnProcess, spawnKiln } from '../support/processes.js';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const DASHBOARD = /* GraphQL */ `
  subscription { generationEvents { generationId cursor step stepIndex } }
`;

describe('two API processes and a separate worker process', () => {
  const processes: KilnProcess[] = [];
  let apis: KilnProcess[];
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-multi-'));
    const env = { DATABASE_URL: await createTestDatabase(), KILN_DATA_DIR: dataDir };
    apis = await Promise.all([0, 1].map(async () => spawnKiln({ ...env, PORT: String(await freePort()) }, ['--role', 'api'])));
    processes.push(...apis, await spawnKiln(env, ['--role', 'worker']));
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.kill('SIGTERM')));
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('streams every event of a job to a subscriber on either API, in the same order', async () => {
    const clients = apis.map((a) => wsClient(a.url!));
    try {
      const dashboard = follow<{ generationEvents: { generationId: string; cursor: string } }>(clients[1]!, DASHBOARD);
      await new Promise((r) => setTimeout(r, 200)); // let the dashboard subscription register before the job starts
      const { generate } = await ok(apis[0]!.gql(GENERATE, { input: { prompt: 'seen everywhere', steps: 6 } }));
      const [a, b] = await Promise.all(clients.map((c) => collect<{ generationProgress: ProgressEvent }>(c, PROGRESS, { id: generate.id })));
      const labels = a!.map((v) => stepLabel(progressOf(v)));
      expect(labels).toEqual(['QUEUED', 'LOADING_MODEL', 'ENCODING_PROMPT', 'GENERATING 1', 'GENERATING 2', 'GENERATING 3', 'GENERATING 4', 'GENERATING 5', 'GENERATING 6', 'SAVING', 'COMPLETED']);
      expect(b!.map((v) => progressOf(v).cursor)).toEqual(a!.map((v) => progressOf(v).cursor));
      // The dashboard stream (live only, every generation) saw this job's events as they happened.
      await dashboard.until((v) => v.generationEvents.generationId === generate.id && v.generationEvents.cursor === progressOf(a!.at(-1)!).cursor);
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });

  it('gives a client whose socket dropped mid-job every step exactly once when it resumes from its last cursor', async () => {
    const { generate } = await ok(apis[0]!.gql(GENERATE, { input: { prompt: 'dropped and resumed', width: 512, height: 512, steps: 30 } }));
    const first = wsClient(apis[1]!.url!);
    const before = follow<{ generationProgress: ProgressEvent }>(first, PROGRESS, { id: generate.id });
    await before.until((v) => progressOf(v).stepIndex === 3);
    first.terminate(); // the connection drops, as on a network cut
    const seen = before.values.map(progressOf);
    const lastCursor = seen.at(-1)!.cursor;

    const second = wsClient(apis[0]!.url!);
    const after = (await collect<{ generationProgress: ProgressEvent }>(second, PROGRESS, { id: generate.id, after: lastCursor })).map(progressOf);
    await second.dispose();
    const all = [...seen, ...after].map(stepLabel);
    expect(all).toEqual([
      'QUEUED',
      'LOADING_MODEL',
      'ENCODING_PROMPT',
      ...Array.from({ length: 30 }, (_, i) => `GENERATING ${i + 1}`),
      'SAVING',
      'COMPLETED',
    ]);
  });
});
