/**
 * From `trainLora` to an image generated with what it trained, through the service:
 * `npm run bench:train-generate [-- --steps 200 --resolution 32 --batch 4]`.
 *
 * Starts Kiln (API and worker in one process, its own embedded Postgres, local storage), creates
 * a 10-image dataset by multipart upload, queues a builtin training, and as soon as it is
 * COMPLETED queues a 256×256, 8-step generation with the new LoRA and its trigger word. Prints
 * the time of each part from the events' timestamps, beside the anchor measured in the same run:
 * the same training and generation in this process, with no service (builtinTrainer.train, then
 * the pipeline with the adapter merged), so the difference is what the service adds.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseCommandLine } from '../src/cli/command-line.js';

const USAGE = `usage: npm run bench:train-generate [-- --steps 200] [--resolution 32] [--batch 4]
  --steps N        training steps (default 200)
  --resolution N   training resolution in pixels (default 32)
  --batch N        images per step (default 4)
  --help           this text`;
const { values: args } = parseCommandLine(USAGE, { steps: { type: 'string', default: '200' }, resolution: { type: 'string', default: '32' }, batch: { type: 'string', default: '4' } });
// Loaded once the command line is read, so that --help does not wait for the whole service.
const [
  { createClient },
  { default: WebSocket },
  { startKiln },
  { loadConfig },
  { startEmbeddedPostgres },
  { createLogger },
  { readLoraAdapter },
  { loraPatcher },
  { BUILTIN_DEFAULTS, BUILTIN_FILES },
  { loadBuiltinPipeline },
  { builtinTrainer },
  { paint, PICTURES, writeBuiltinModel },
] = await Promise.all([
  import('graphql-ws'),
  import('ws'),
  import('../src/app.js'),
  import('../src/config.js'),
  import('../src/db/embedded-postgres.js'),
  import('../src/log.js'),
  import('../src/models/lora-adapter.js'),
  import('../src/models/lora-merge.js'),
  import('../src/pipelines/builtin/model-files.js'),
  import('../src/pipelines/builtin/pipeline.js'),
  import('../src/trainers/builtin/trainer.js'),
  import('../test/support/training-datasets.js'),
]);
const spec = { steps: Number(args.steps), rank: 8, alpha: 8, learningRate: 0.01, resolution: Number(args.resolution), batchSize: Number(args.batch), seed: 1 };
const trigger = 'kilnstyle';
const prompt = `${trigger}, ${PICTURES[0]!.caption}`;
const log = createLogger('warn');
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-bench-train-generate-'));
await fs.chmod(dir, 0o755);
const pg = await startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: 57000 + (process.pid % 1000), log });
const kiln = await startKiln(
  loadConfig({ DATABASE_URL: await pg.url('kiln'), KILN_DATA_DIR: dir, PORT: '0', KILN_LOG_LEVEL: 'warn', KILN_RATE_LIMIT_PER_MINUTE: '0' }),
  log,
);
const ws = createClient({ url: `${kiln.url!.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });

const gql = async (query: string, variables: object = {}) => {
  const res = await fetch(`${kiln.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data: any; errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
};
/** Every event of a job, to its end. */
const events = (id: string) =>
  new Promise<{ step: string; stepIndex: number | null; at: string }[]>((resolve, reject) => {
    const out: { step: string; stepIndex: number | null; at: string }[] = [];
    ws.subscribe<{ generationProgress: { step: string; stepIndex: number | null; at: string } }>(
      { query: 'subscription($id: ID!) { generationProgress(id: $id) { step stepIndex at } }', variables: { id } },
      { next: (v) => out.push(v.data!.generationProgress), error: reject, complete: () => resolve(out) },
    );
  });

const form = new FormData();
const files: { name: string; bytes: Buffer }[] = [];
for (const [i, p] of PICTURES.entries()) files.push({ name: `${i}.png`, bytes: await paint(p.paint, 128) }, { name: `${i}.txt`, bytes: Buffer.from(p.caption) });
form.append('operations', JSON.stringify({ query: 'mutation($f: [Upload!]!) { createDataset(files: $f, input: { name: "bench" }) { id } }', variables: { f: files.map(() => null) } }));
form.append('map', JSON.stringify(Object.fromEntries(files.map((_, i) => [String(i), [`variables.f.${i}`]]))));
files.forEach((f, i) => form.append(String(i), new Blob([new Uint8Array(f.bytes)]), f.name));
const created = (await (await fetch(`${kiln.url}/graphql`, { method: 'POST', body: form, headers: { 'x-graphql-yoga-csrf': '1' } })).json()) as { data: { createDataset: { id: string } } };
const datasetId = created.data.createDataset.id;
console.log(`builtin training through the service: 10 images, ${spec.steps} steps at ${spec.resolution}×${spec.resolution}, batch ${spec.batchSize}, rank ${spec.rank}; then one 256×256 8-step generation with the LoRA`);

const t0 = performance.now();
const { trainLora } = await gql('mutation($i: TrainLoraInput!) { trainLora(input: $i) { id } }', {
  i: { datasetId, name: 'bench', triggerWord: trigger, ...spec, checkpointEvery: Math.ceil(spec.steps / 10), sampleEvery: 0 },
});
const trained = await events(trainLora.id);
const { generate } = await gql('mutation($i: GenerateInput!) { generate(input: $i) { id } }', { i: { prompt, loraId: trainLora.id, width: 256, height: 256, steps: 8, seed: 1 } });
const generated = await events(generate.id);
const tImage = performance.now();

const at = (evs: typeof trained, step: string, index?: number) => Date.parse(evs.find((e) => e.step === step && (index === undefined || e.stepIndex === index))!.at);
const first = (evs: typeof trained) => Date.parse(evs[0]!.at);
const rows = [
  ['queued → dataset being prepared', at(trained, 'PREPARING_DATASET') - first(trained)],
  ['dataset and checkpoint fetched, model held', at(trained, 'TRAINING', 1) - at(trained, 'PREPARING_DATASET')],
  [`training (${spec.steps} steps)`, at(trained, 'TRAINING', spec.steps) - at(trained, 'TRAINING', 1)],
  ['last step → COMPLETED (adapter registered)', at(trained, 'COMPLETED') - at(trained, 'TRAINING', spec.steps)],
  ['COMPLETED → generation queued (this client)', first(generated) - at(trained, 'COMPLETED')],
  ['generation: queued → COMPLETED', at(generated, 'COMPLETED') - first(generated)],
] as const;
const total = tImage - t0;
await ws.dispose();
await kiln.stop();
await pg.stop();

// Anchor: the same work in this process, no service.
const root = path.join(dir, 'anchor');
const modelDir = await writeBuiltinModel(path.join(root, 'model'));
const a0 = performance.now();
const result = await builtinTrainer.train(
  {
    datasetDir: path.join(dir, 'storage', 'datasets', datasetId),
    baseModel: { dir: modelDir, pipeline: 'builtin' },
    triggerWord: trigger,
    name: 'bench',
    ...spec,
    workDir: path.join(root, 'work'),
    checkpointEvery: 0,
    sampleEvery: 0,
  },
  { signal: new AbortController().signal, onStep() {}, onSample() {}, onCheckpoint() {} },
);
const a1 = performance.now();
const patch = loraPatcher(await readLoraAdapter(result.adapterPath), 1, { file: BUILTIN_FILES.denoiser });
const pipeline = await loadBuiltinPipeline(modelDir, { executionProviders: ['cpu'], graphPatches: [patch] });
await pipeline.generate({ prompt, negativePrompt: null, steps: 8, guidanceScale: BUILTIN_DEFAULTS.guidanceScale, width: 256, height: 256, seed: 1, numImages: 1 }, { signal: new AbortController().signal, onStep() {} });
await pipeline.release();
const a2 = performance.now();

const ms = (v: number) => `${v.toFixed(0).padStart(7)} ms`;
for (const [label, v] of rows) console.log(`  ${label.padEnd(46)}${ms(v)}`);
console.log(`  ${'trainLora → image with the LoRA (total)'.padEnd(46)}${ms(total)}`);
console.log(`\n  anchor, in this process without the service:`);
console.log(`  ${'training'.padEnd(46)}${ms(a1 - a0)}  (${((spec.steps * 1000) / (a1 - a0)).toFixed(1)} steps/s)`);
console.log(`  ${'merge, session, 256×256 image'.padEnd(46)}${ms(a2 - a1)}`);
console.log(`  ${'total'.padEnd(46)}${ms(a2 - a0)}`);
console.log(`  the service adds ${ms(total - (a2 - a0))} (${(((total - (a2 - a0)) / (a2 - a0)) * 100).toFixed(0)}%)`);
await fs.rm(dir, { recursive: true, force: true });
