/**
 * A process holding a model cache lock, for the lock tests: takes `FileLock` on argv[2] (staleMs
 * argv[3]), says `held`, then answers each `check` line on stdin with `held` or `lost`
 * (FileLock.assertHeld), and releases and exits when stdin closes.
 */
import readline from 'node:readline';
import { FileLock } from '../../src/models/model-cache-locks.js';

const lock = await FileLock.take(process.argv[2]!, { staleMs: Number(process.argv[3]) });
process.stdout.write('held\n');
const input = readline.createInterface({ input: process.stdin });
input.on('line', (line) => {
  if (line !== 'check') return;
  lock.assertHeld().then(
    () => process.stdout.write('held\n'),
    () => process.stdout.write('lost\n'),
  );
});
input.on('close', () => void lock.release().then(() => process.exit(0)));
