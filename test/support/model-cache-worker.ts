/**
 * A worker process's side of the model cache, driven by a test through stdin (one JSON command
 * per line) and answering on stdout (JSON lines: its log records and `{ event }` lines).
 *
 * Run: node --import tsx test/support/model-cache-worker.ts '<CacheWorkerOptions as JSON>'
 */
import readline from 'node:readline';
import { createLogger } from '../../src/log.js';
import { type CachedModel, type CachedModelDir, ModelCache } from '../../src/models/model-cache.js';
import { RemoteLikeStorage } from './model-cache-storage.js';

export interface CacheWorkerOptions {
  storageRoot: string;
  cacheDir: string;
  readsLog: string;
  maxBytes: number;
  minFreeBytes: number;
  /** Hold every read half-way until the `open-gate` command. */
  gated: boolean;
}

export type CacheWorkerCommand = { cmd: 'acquire'; model: CachedModel } | { cmd: 'open-gate' } | { cmd: 'release' };

export type CacheWorkerEvent =
  | { event: 'ready' }
  | { event: 'read-held'; key: string }
  | { event: 'acquired'; dir: string; fetchMs: number }
  | { event: 'failed'; code: string; message: string }
  | { event: 'released' };

const emit = (e: CacheWorkerEvent) => process.stdout.write(`${JSON.stringify(e)}\n`);

const options = JSON.parse(process.argv[2]!) as CacheWorkerOptions;
let openGate!: () => void;
const gate = new Promise<void>((resolve) => (openGate = resolve));
const storage = new RemoteLikeStorage(options.storageRoot, {
  readsLog: options.readsLog,
  ...(options.gated ? { gate, onHeld: (key: string) => emit({ event: 'read-held', key }) } : {}),
});
const cache = new ModelCache({
  dir: options.cacheDir,
  maxBytes: options.maxBytes,
  minFreeBytes: options.minFreeBytes,
  storage,
  log: createLogger('info'),
});
await cache.start();
const held: CachedModelDir[] = [];

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as CacheWorkerCommand;
  switch (command.cmd) {
    case 'acquire':
      cache.acquire(command.model).then(
        (lease) => {
          held.push(lease);
          emit({ event: 'acquired', dir: lease.dir, fetchMs: lease.fetchMs });
        },
        (err: Error & { code?: string }) => emit({ event: 'failed', code: err.code ?? 'ERROR', message: err.message }),
      );
      break;
    case 'open-gate':
      openGate();
      break;
    case 'release':
      held.splice(0).forEach((lease) => lease.release());
      emit({ event: 'released' });
      break;
  }
});
// The test closing our stdin is the signal to go.
process.stdin.on('end', () => void cache.stop().then(() => process.exit(0)));
emit({ event: 'ready' });
