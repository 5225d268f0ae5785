import crypto from 'node:crypto';
import sharp from 'sharp';
import { JobFailure } from '../../../src/errors.js';
import type { TaskContext, TaskResult } from '../../../src/jobs/kind.js';
import type { EchoParams } from './kind.js';

const RUNNER = new URL('./runner-task.ts', import.meta.url).href;

export async function run(ctx: TaskContext<EchoParams>): Promise<TaskResult> {
  const p = ctx.job.params;
  ctx.report('LOADING_MODEL', { message: 'nothing to load' });
  if (ctx.attempt <= p.failAttempts) throw new JobFailure('FLAKY', `attempt ${ctx.attempt} fails on purpose`, true);
  const { echoed } = await ctx.inRunner<{ echoed: string }>(RUNNER, { text: p.text, units: p.units, stepMs: p.stepMs }, (name, data) => {
    const step = data as { index: number; count: number };
    if (name === 'step') ctx.report('GENERATING', { stepIndex: step.index, stepCount: step.count, detail: { echoedSoFar: step.index } });
  });
  ctx.releaseRunner();
  ctx.report('SAVING');
  await new Promise((resolve) => setTimeout(resolve, p.saveMs));
  const pixels = Buffer.from([...echoed].flatMap((c) => [c.charCodeAt(0), c.charCodeAt(0), c.charCodeAt(0)]));
  const png = await sharp(pixels, { raw: { width: echoed.length, height: 1, channels: 3 } }).png().toBuffer();
  const storageKey = `${ctx.filesPrefix}/echo.png`;
  await ctx.storage.put(storageKey, png, 'image/png');
  return {
    outputs: [
      {
        index: 0,
        mediaType: 'image',
        storageKey,
        mimeType: 'image/png',
        bytes: png.length,
        sha256: crypto.createHash('sha256').update(png).digest('hex'),
        metadata: { width: echoed.length, height: 1, seed: 0 },
      },
    ],
  };
}
