import { type ChildProcess, fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { JobFailure } from '../errors.js';
import type { Logger } from '../log.js';
import type { ProviderCheck } from '../pipelines/onnx/provider-check.js';
import type { FromRunner, RunnerSettings, RunSpec, ToRunner } from './runner-protocol.js';

const ENTRY = fileURLToPath(new URL('./runner-process.ts', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;


export interface RunLimits {
  /** Aborting asks the runner to stop at the next step; the promise rejects with the reason. */
  signal: AbortSignal;
  /** Past this the runner is asked to stop, as by a cancel. */
  softTimeoutMs: number;
  /** Past this the runner process is killed, whatever it is doing. */
  hardTimeoutMs: number;
  /** How long a cancelled run may take to stop before its process is killed. */
  cancelGraceMs: number;
}

interface Current {
  jobId: string;
  onEvent: (name: string, data: unknown) => void;
  resolve: (result: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * One inference runner process, one job at a time. The process is started on first use, kept
 * for the next job (its loaded models with it), and started again after it dies or is killed.
 */
export class Runner {
  private child: ChildProcess | undefined;
  private ready: Promise<void> | undefined;
  private current: Current | undefined;
  /** What the runner process found at its start; undefined before it first started. */
  providers: ProviderCheck | undefined;
  /** What its session cache held after the last run: the loaded state a next job could reuse. */
  warm: string[] = [];
  cacheBytes = 0;

  constructor(
    private readonly settings: RunnerSettings,
    private readonly log: Logger,
  ) {}

  /** Runs a task in the runner process; `onEvent` hears what it emits, in order. */
  async run(spec: RunSpec, onEvent: (name: string, data: unknown) => void, limits: RunLimits): Promise<unknown> {
    if (this.current) throw new Error('runner is busy');
    await this.start();
    const child = this.child!;
    let stopReason: unknown;
    const timers: NodeJS.Timeout[] = [];
    const kill = (reason: unknown) => {
      stopReason = reason;
      this.log.warn({ jobId: spec.jobId, reason: String(reason) }, 'killing the inference runner');
      child.kill('SIGKILL');
    };
    const cancel = (reason: unknown) => {
      if (stopReason !== undefined) return;
      stopReason = reason;
      this.send({ type: 'cancel', jobId: spec.jobId });
      timers.push(setTimeout(() => kill(reason), limits.cancelGraceMs));
    };
    const onAbort = () => cancel(limits.signal.reason);
    try {
      return await new Promise<unknown>((resolve, reject) => {
        this.current = {
          jobId: spec.jobId,
          onEvent,
          resolve,
          reject: (err) => reject(stopReason ?? err),
        };
        timers.push(
          setTimeout(() => cancel(new JobFailure('TIMEOUT', `stopped after the soft time limit of ${limits.softTimeoutMs / 1000}s`, false)), limits.softTimeoutMs),
          setTimeout(() => kill(new JobFailure('TIMEOUT', `killed after the hard time limit of ${limits.hardTimeoutMs / 1000}s`, false)), limits.hardTimeoutMs),
        );
        if (limits.signal.aborted) onAbort();
        else limits.signal.addEventListener('abort', onAbort, { once: true });
        this.send({ type: 'run', spec });
      });
    } finally {
      timers.forEach(clearTimeout);
      limits.signal.removeEventListener('abort', onAbort);
      this.current = undefined;
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    this.ready = undefined;
    const exited = new Promise((r) => child.once('exit', r));
    child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  /** Starts the runner process (and its provider check) now rather than at the first job. */
  start(): Promise<void> {
    this.ready ??= new Promise<void>((resolve, reject) => {
      const child = fork(ENTRY, [], {
        serialization: 'advanced',
        execArgv: ['--import', TSX],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      this.child = child;
      child.on('message', (m: FromRunner) => {
        if (m.type !== 'ready') return this.receive(m);
        this.providers = m.providers;
        for (const { name, reason } of m.providers.refused) {
          this.log.warn({ provider: name, reason, using: m.providers.usable }, `execution provider ${name} is not available here; using ${m.providers.usable.join(', ')}`);
        }
        resolve();
      });
      child.on('error', (err) => this.log.error({ err }, 'inference runner error'));
      child.once('exit', (code, signal) => {
        if (this.child === child) {
          this.child = undefined;
          this.ready = undefined;
          // A new process starts with nothing loaded.
          this.warm = [];
          this.cacheBytes = 0;
        }
        const failure = new JobFailure('RUNNER_CRASHED', `the inference process exited (${signal ?? `code ${code}`})`, true);
        reject(failure);
        this.current?.reject(failure);
      });
      child.send({ type: 'init', settings: this.settings } satisfies ToRunner);
    });
    return this.ready;
  }

  private send(message: ToRunner) {
    this.child?.send(message);
  }

  private receive(m: Exclude<FromRunner, { type: 'ready' }>) {
    const current = this.current;
    if (!current || current.jobId !== m.jobId) return;
    switch (m.type) {
      case 'event':
        current.onEvent(m.name, m.data);
        break;
      case 'done':
        this.warm = m.warm;
        this.cacheBytes = m.cacheBytes;
        current.resolve(m.result);
        break;
      case 'failed':
        this.warm = m.warm;
        this.cacheBytes = m.cacheBytes;
        current.reject(new JobFailure(m.error.code, m.error.message, m.error.retryable));
        if (m.error.stack) this.log.error({ jobId: m.jobId, code: m.error.code, stack: m.error.stack }, 'job failed in the runner');
        break;
    }
  }
}
