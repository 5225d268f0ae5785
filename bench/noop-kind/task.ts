import type { TaskContext, TaskResult } from '../../src/jobs/kind.js';

const RUNNER = new URL('./runner-task.ts', import.meta.url).href;

/** The steps an image job reports, around a runner call that does nothing; its time is the runner's share. */
export async function run(ctx: TaskContext<{ label: string }>): Promise<TaskResult> {
  ctx.report('LOADING_MODEL');
  const t0 = performance.now();
  await ctx.inRunner(RUNNER, {}, () => undefined);
  ctx.timing.generateMs = performance.now() - t0;
  ctx.report('GENERATING', { stepIndex: 1, stepCount: 1 });
  ctx.report('SAVING');
  return { outputs: [] };
}
