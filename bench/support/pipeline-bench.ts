/**
 * What the pipeline benches (bench:pipeline, bench:sdxl, bench:flux) share: their command line
 * (model folders after the reference fixture where it is present, steps, size, rounds,
 * generations, providers), medians, and the process's peak RSS.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommandLine, usageError } from '../../src/cli/command-line.js';

export interface PipelineBenchSpec {
  /** The npm script, for the usage. */
  script: string;
  /** The family's name, for the usage. */
  family: string;
  /** The fixture in ../shared/fixtures measured first, where it is present. */
  fixture: string;
  /** What one step runs, for the usage ("UNet", "transformer"). */
  stepOf: string;
  /** Pixels a side when --size is not given; undefined: the model's own. */
  defaultSize?: number;
  defaultGenerations: number;
}

export function pipelineBenchArgs(spec: PipelineBenchSpec) {
  const size = spec.defaultSize ? String(spec.defaultSize) : undefined;
  const usage = `usage: npm run ${spec.script} -- [MODEL_DIR ...] [--steps 10] [--size ${size ?? 'S'}] [--rounds 5] [--generations ${spec.defaultGenerations}] [--provider cpu]
  MODEL_DIR       ${spec.family} ONNX folders, after ../shared/fixtures/${spec.fixture} where it is present
  --steps N       ${spec.stepOf} steps a generation (default 10)
  --size PX       width and height (default ${size ?? "the model's"})
  --rounds N      timed rounds, alternating Kiln and bare session.run (default 5)
  --generations N generations for the memory figure (default ${spec.defaultGenerations})
  --provider LIST execution providers (default cpu)
  --help          this text`;
  const { values, positionals } = parseCommandLine(
    usage,
    {
      steps: { type: 'string', default: '10' },
      size: { type: 'string', ...(size ? { default: size } : {}) },
      rounds: { type: 'string', default: '5' },
      generations: { type: 'string', default: String(spec.defaultGenerations) },
      provider: { type: 'string', default: 'cpu' },
    },
    { allowPositionals: true },
  );
  const fixture = fileURLToPath(new URL(`../../../shared/fixtures/${spec.fixture}`, import.meta.url));
  const models = [...(fs.existsSync(fixture) ? [fixture] : []), ...positionals.map((p) => path.resolve(p))];
  if (!models.length) usageError(usage, `no model: ../shared/fixtures/${spec.fixture} is absent and no folder was given`);
  return {
    models,
    steps: Number(values.steps),
    size: values.size === undefined ? undefined : Number(values.size),
    rounds: Number(values.rounds),
    generations: Number(values.generations),
    provider: values.provider,
    options: { executionProviders: values.provider.split(',') },
  };
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** The process's RSS now, keeping the highest seen. */
export class RssSampler {
  peak = 0;
  sample(): number {
    const rss = process.memoryUsage.rss();
    this.peak = Math.max(this.peak, rss);
    return rss;
  }
}

/** A session whose run calls a bench can time (onnxruntime's InferenceSession, or Kiln's wrapper of one). */
interface TimedSession {
  run(...args: never[]): Promise<unknown>;
}

/**
 * One generation's step timing: ms per step (between step reports 1 and n, over n − 1), and of
 * that, the ms per step spent outside `session.run` (Kiln's own work, known apart from how
 * loaded the machine is). `fed` collects the first argument of every run, for a bare loop to
 * replay.
 */
export async function timedSteps(session: TimedSession, generate: (onStep: () => void) => Promise<unknown>, fed: unknown[] = []) {
  const at: number[] = [];
  const run = session.run;
  let inside = 0;
  session.run = async function (this: unknown, ...args: never[]) {
    fed.push(args[0]);
    const t0 = performance.now();
    const out = await run.apply(this, args);
    if (at.length) inside += performance.now() - t0;
    return out;
  };
  try {
    await generate(() => void at.push(performance.now()));
  } finally {
    session.run = run;
  }
  const step = (at.at(-1)! - at[0]!) / (at.length - 1);
  return { step, own: step - inside / (at.length - 1) };
}

/** RSS after every tenth of `generations` runs of `generate` (and the last): it must stay flat. */
export async function rssOverGenerations(rss: RssSampler, generations: number, generate: (g: number) => Promise<unknown>): Promise<string> {
  const memory = [rss.sample()];
  for (let g = 1; g <= generations; g++) {
    await generate(g);
    if (g % 10 === 0 || g === generations) memory.push(rss.sample());
  }
  return memory.map(mib).join(' → ');
}
