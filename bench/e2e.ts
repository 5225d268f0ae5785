/**
 * The walking skeleton's acceptance run against a running Kiln (`npm start` first; USAGE below).
 * Submits generations, follows each over graphql-ws, downloads the PNG, checks its size and
 * sha256, and prints the time from submit to each step and to COMPLETED.
 */
import crypto from 'node:crypto';
import { createClient } from 'graphql-ws';
import sharp from 'sharp';
import WebSocket from 'ws';
import { parseCommandLine } from '../src/cli/command-line.js';

const USAGE = `usage: npm run bench:e2e -- [--url URL] [--runs 3] [--size 256] [--steps 8]
  --url URL     the running Kiln to measure (default http://localhost:4000)
  --runs N      generations, one after another (default 3)
  --size PX     their width and height (default 256)
  --steps N     their denoising steps (default 8)
  --help        this text`;

const { values } = parseCommandLine(USAGE, {
  url: { type: 'string', default: 'http://localhost:4000' },
  runs: { type: 'string', default: '3' },
  size: { type: 'string', default: '256' },
  steps: { type: 'string', default: '8' },
});
const base = values.url.replace(/\/+$/, '');
const size = Number(values.size);
const steps = Number(values.steps);
const input = { prompt: 'a kiln glowing in the night', width: size, height: size, steps, seed: 1234 };

const gql = async (query: string, variables: object) => {
  const res = await fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
};
const client = createClient({ url: `${base.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket });

const hashes = new Set<string>();
console.log(`Kiln at ${base}: ${values.runs} × generate ${size}×${size}, ${steps} steps\n`);
console.log('run  first event  GENERATING 1  COMPLETED   steps received');
for (let run = 1; run <= Number(values.runs); run++) {
  const t0 = performance.now();
  const { generate } = await gql('mutation($input: GenerateInput!) { generate(input: $input) { id } }', { input });
  const seen: { label: string; ms: number }[] = [];
  await new Promise<void>((resolve, reject) =>
    client.subscribe<{ generationProgress: { step: string; stepIndex: number | null } }>(
      { query: 'subscription($id: ID!) { generationProgress(id: $id) { step stepIndex } }', variables: { id: generate.id } },
      {
        next: ({ data }) => {
          const e = data!.generationProgress;
          seen.push({ label: e.step === 'GENERATING' ? `GENERATING ${e.stepIndex}` : e.step, ms: performance.now() - t0 });
        },
        error: reject,
        complete: resolve,
      },
    ),
  );
  const { generation } = await gql('query($id: ID!) { generation(id: $id) { status images { url sha256 width height } } }', { id: generate.id });
  if (generation.status !== 'COMPLETED') throw new Error(`generation ended ${generation.status}`);
  const image = generation.images[0];
  const png = Buffer.from(await (await fetch(image.url)).arrayBuffer());
  const sha = crypto.createHash('sha256').update(png).digest('hex');
  const meta = await sharp(png).metadata();
  if (sha !== image.sha256 || meta.width !== size || meta.height !== size) throw new Error('downloaded image does not match its record');
  hashes.add(sha);
  const at = (label: string) => `${seen.find((s) => s.label === label)?.ms.toFixed(0) ?? '-'} ms`.padStart(12);
  console.log(`${String(run).padStart(3)}  ${`${seen[0]!.ms.toFixed(0)} ms`.padStart(11)}  ${at('GENERATING 1')}  ${at('COMPLETED')}  ${seen.map((s) => s.label).join(', ')}`);
}
console.log(`\nimages: ${hashes.size === 1 ? 'byte-identical across runs' : `${hashes.size} different hashes`} (sha256 ${[...hashes][0]})`);
await client.dispose();
