/**
 * Warm-model affinity: `npm run bench:affinity [-- --jobs 100]`. Two worker processes whose
 * runners hold one loaded model each (KILN_SESSION_CACHE_MB=1.5), two models (the built-in one,
 * and the built-in one with a LoRA: two sessions), jobs alternating between them, queued before
 * the workers start. Prints the model loads per 100 jobs and the wall time, with affinity (the
 * default) and without it (KILN_AFFINITY_WAIT_S=0), in the same run on the same database.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseCommandLine } from '../src/cli/command-line.js';

const USAGE = `usage: npm run bench:affinity [-- --jobs 100]
  --jobs N      jobs alternating between two models, over two workers (default 100)
  --help        this text`;
const { values } = parseCommandLine(USAGE, { jobs: { type: 'string', default: '100' } });
// Loaded once the command line is read, so that --help does not wait for the whole service.
const [{ startKiln }, { loadConfig }, { startEmbeddedPostgres }, { createLogger }, { makeBuiltinLora }] = await Promise.all([
  import('../src/app.js'),
  import('../src/config.js'),
  import('../src/db/embedded-postgres.js'),
  import('../src/log.js'),
  import('../src/models/builtin-lora.js'),
]);
const N = Number(values.jobs);
const log = createLogger('warn');
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-bench-affinity-'));
await fs.chmod(dir, 0o755);
const pg = await startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: 57000 + (process.pid % 1000), log });
const url = await pg.url('kiln');
const env = { DATABASE_URL: url, KILN_DATA_DIR: dir, PORT: '0', KILN_LOG_LEVEL: 'warn', KILN_RATE_LIMIT_PER_MINUTE: '0' };
const api = await startKiln(loadConfig({ ...env, KILN_MAX_BATCH: '1000' }, ['--role', 'api']), log);

const gql = async (query: string, variables: object = {}, init: RequestInit = {}) => {
  const res = await fetch(`${api.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }), ...init });
  const body = (await res.json()) as { data: any; errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
};

// The built-in image model (the built-in music model is a base model too).
const { models } = await gql('{ models(kind: BASE) { edges { node { id builtin modality } } } }');
const baseId = models.edges.find((e: { node: { builtin: boolean; modality: string } }) => e.node.builtin && e.node.modality === 'image').node.id as string;
const form = new FormData();
form.append('operations', JSON.stringify({ query: 'mutation($f: Upload!, $i: UploadModelInput!) { uploadModel(file: $f, input: $i) { id } }', variables: { f: null, i: { name: 'bench-lora', kind: 'LORA', baseModelId: baseId } } }));
form.append('map', JSON.stringify({ 0: ['variables.f'] }));
form.append('0', new Blob([Buffer.from(makeBuiltinLora({ seed: 3 }))]), 'lora.safetensors');
const uploaded = (await (await fetch(`${api.url}/graphql`, { method: 'POST', body: form, headers: { 'x-graphql-yoga-csrf': '1' } })).json()) as { data: { uploadModel: { id: string } | null }; errors?: unknown };
if (!uploaded.data?.uploadModel) throw new Error(`the bench's LoRA was refused: ${JSON.stringify(uploaded.errors)}`);
const loraId = uploaded.data.uploadModel.id;

/** A worker process, as `npm start -- --role worker` runs it. */
function startWorker(extra: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--role', 'worker'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env, KILN_LOG_LEVEL: 'info', KILN_SESSION_CACHE_MB: '1.5', ...extra },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise<void>((resolve) => {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('"worker started"')) resolve();
    });
  });
  return { ready, stop: () => new Promise<void>((r) => (child.once('exit', () => r()), child.kill('SIGTERM'))) };
}

async function run(label: string, extra: Record<string, string>) {
  const inputs = Array.from({ length: N }, (_, i) => ({ prompt: `job ${i}`, width: 64, height: 64, steps: 1, previews: false, ...(i % 2 ? { loraId, loraWeight: 1 } : {}) }));
  const ids: string[] = (await gql('mutation($i: [GenerateInput!]!) { generateBatch(inputs: $i) { generations { id } } }', { i: inputs })).generateBatch.generations.map((g: { id: string }) => g.id);
  const t0 = performance.now();
  const workers = [startWorker(extra), startWorker(extra)];
  await Promise.all(workers.map((w) => w.ready));
  for (;;) {
    const [{ n }] = await api.ds.query(`SELECT count(*)::int AS n FROM jobs WHERE id = ANY($1) AND status = 'COMPLETED'`, [ids]);
    if (n === ids.length) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const seconds = (performance.now() - t0) / 1000;
  await Promise.all(workers.map((w) => w.stop()));
  const [{ loads }] = await api.ds.query(
    `SELECT count(*)::int AS loads FROM job_events WHERE job_id = ANY($1) AND step = 'ENCODING_PROMPT' AND message LIKE 'Model loaded%'`,
    [ids],
  );
  console.log(`${label}: ${((loads / N) * 100).toFixed(1)} model loads per 100 jobs (${loads} for ${N}), ${seconds.toFixed(1)} s with the workers' start`);
  return loads;
}

const without = await run('without affinity (KILN_AFFINITY_WAIT_S=0)', { KILN_AFFINITY_WAIT_S: '0' });
const withIt = await run('with affinity (default, 30 s window)   ', {});
console.log(`loads with affinity / without: ${(withIt / Math.max(1, without)).toFixed(2)}`);

await api.stop();
await pg.stop();
await fs.rm(dir, { recursive: true, force: true });
