/**
 * Runs one builtin training in a process of its own, for tests that kill it: the spec is the
 * JSON in argv[2]; every step is printed as a JSON line on stdout.
 */
import { builtinTrainer } from '../../src/trainers/builtin/trainer.js';
import type { TrainingSpec } from '../../src/trainers/trainer.js';

const spec = JSON.parse(process.argv[2]!) as TrainingSpec;
await builtinTrainer.train(spec, {
  signal: new AbortController().signal,
  onStep: (p) => console.log(JSON.stringify({ step: p.step })),
  onCheckpoint: (c) => console.log(JSON.stringify({ checkpoint: c.step })),
  onSample() {},
});
console.log(JSON.stringify({ done: true }));
