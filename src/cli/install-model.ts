/**
 * Installs a model on a running Kiln from a Hugging Face hub repository or a URL, through its
 * API, and follows the install to its end with a progress bar:
 *
 *   npm run model:install -- SOURCE [--name NAME] [--kind BASE|LORA] [--base MODEL_ID]
 *     [--trigger WORD] [--revision REV] [--files PATTERN]… [--url http://localhost:4000]
 *     [--api-key KEY]
 *
 * The worker does the downloading; this only asks and watches. Ctrl-C cancels the install.
 */
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { parseCommandLine, usageError } from './command-line.js';
import { type ProgressLine, renderProgress } from './progress-bar.js';

const USAGE = `usage: model:install SOURCE [options]

SOURCE is hf:owner/repo (optionally @revision and :subfolder), or an https:// URL to one
.safetensors file (a LoRA adapter) or to a zip or tar archive of a model folder.

  --name NAME        the model's name (default: the repository's or file's)
  --kind BASE|LORA   default: LORA with --base, else BASE
  --base MODEL_ID    for a LoRA adapter: the base model it applies to
  --trigger WORD     a LoRA's trigger word
  --revision REV     a branch, tag or commit of the repository (default main)
  --files PATTERN    which files to take (repeatable), e.g. --files '*.json' --files 'onnx/*_fp16.onnx';
                     !PATTERN leaves files out (default: what the model's layout needs)
  --url URL          the Kiln to install on (default http://localhost:4000)
  --api-key KEY      when that Kiln has KILN_API_KEYS set
  --help             this text

Gated and private hub repositories need KILN_HF_TOKEN set on the Kiln that downloads them.`;

const { values, positionals } = parseCommandLine(
  USAGE,
  {
    name: { type: 'string' },
    kind: { type: 'string' },
    base: { type: 'string' },
    trigger: { type: 'string' },
    revision: { type: 'string' },
    files: { type: 'string', multiple: true },
    url: { type: 'string', default: 'http://localhost:4000' },
    'api-key': { type: 'string' },
  },
  { allowPositionals: true },
);
const source = positionals[0];
if (!source || positionals.length > 1) usageError(USAGE, 'Name one SOURCE.');
if (values.kind && values.kind !== 'BASE' && values.kind !== 'LORA') usageError(USAGE, `--kind is BASE or LORA, not ${values.kind}.`);

const base = values.url!.replace(/\/+$/, '');
const authorization: Record<string, string> = values['api-key'] ? { authorization: `Bearer ${values['api-key']}` } : {};
const gql = async (query: string, variables: object) => {
  const res = await fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...authorization }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data?: any; errors?: { message: string; extensions?: { code?: string } }[] };
  if (body.errors?.length) throw new Error(`${body.errors[0]!.extensions?.code ?? 'ERROR'}: ${body.errors[0]!.message}`);
  return body.data;
};

const input = {
  source,
  ...(values.name ? { name: values.name } : {}),
  ...(values.kind ? { kind: values.kind } : {}),
  ...(values.base ? { baseModelId: values.base } : {}),
  ...(values.trigger ? { triggerWord: values.trigger } : {}),
  ...(values.revision ? { revision: values.revision } : {}),
  ...(values.files?.length ? { files: values.files } : {}),
};

try {
  const { installModel } = await gql(`mutation($input: InstallModelInput!) { installModel(input: $input) { id name } }`, { input });
  const id: string = installModel.id;
  console.log(`installing ${source} as "${installModel.name}" (job ${id}); Ctrl-C cancels it`);
  process.once('SIGINT', () => {
    console.log('\ncancelling…');
    gql(`mutation($id: ID!) { cancelJob(id: $id) { id } }`, { id }).catch((err) => console.error(`model:install: ${(err as Error).message}`));
  });
  await follow(id);
  const { modelInstall } = await gql(
    `query($id: ID!) { modelInstall(id: $id) { status error { code message } model { id name kind pipeline sizeBytes } } }`,
    { id },
  );
  if (modelInstall.status === 'COMPLETED') {
    const m = modelInstall.model;
    console.log(`model ${m.name} (${m.id}): ${m.kind}, pipeline ${m.pipeline}, ${m.sizeBytes} bytes`);
  } else {
    console.error(`model:install: ${modelInstall.status}${modelInstall.error ? ` (${modelInstall.error.code}): ${modelInstall.error.message}` : ''}`);
    process.exitCode = 1;
  }
} catch (err) {
  console.error(`model:install: ${(err as Error).message}`);
  process.exitCode = 1;
}

/**
 * Prints each event as it comes: one line redrawn on a terminal; otherwise (a log) a line per
 * step and per tenth of the way.
 */
async function follow(id: string): Promise<void> {
  const client = createClient({ url: `${base.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 3, connectionParams: authorization });
  const tty = process.stdout.isTTY;
  let lastStep = '';
  let lastTenth = -1;
  try {
    await new Promise<void>((resolve, reject) => {
      client.subscribe<{ generationProgress: ProgressLine }>(
        { query: `subscription($id: ID!) { generationProgress(id: $id) { step progress message etaSeconds detail } }`, variables: { id } },
        {
          next: ({ data, errors }) => {
            if (errors?.length) return reject(new Error(errors[0]!.message));
            const e = data!.generationProgress;
            if (tty) process.stdout.write(`\r${renderProgress(e, process.stdout.columns ?? 100).padEnd(process.stdout.columns ?? 100)}`);
            else if (e.step !== lastStep || Math.floor(e.progress * 10) !== lastTenth) console.log(renderProgress(e, 200));
            lastStep = e.step;
            lastTenth = Math.floor(e.progress * 10);
          },
          error: (err) => reject(err instanceof Error ? err : new Error(JSON.stringify(err))),
          complete: resolve,
        },
      );
    });
  } finally {
    if (tty) process.stdout.write('\n');
    await client.dispose();
  }
}
