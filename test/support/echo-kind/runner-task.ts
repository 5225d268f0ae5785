import { setTimeout as delay } from 'node:timers/promises';
import type { RunnerContext } from '../../../src/worker/runner-protocol.js';

export async function runInRunner(input: { text: string; units: number; stepMs: number }, ctx: RunnerContext) {
  for (let index = 1; index <= input.units; index++) {
    ctx.signal.throwIfAborted();
    await delay(input.stepMs);
    ctx.emit('step', { index, count: input.units });
  }
  return { echoed: input.text.toUpperCase() };
}
