/**
 * The inference runner: a child process of the worker that loads models and runs kinds' runner
 * tasks, so a job that hangs in native code can be killed without taking the worker down. It
 * talks to its parent over IPC (runner-protocol.ts) and exits when the parent goes away.
 */
import { JobFailure, KilnError } from '../errors.js';
import { SessionCache } from '../models/session-cache.js';
import { checkProviders } from '../pipelines/onnx/provider-check.js';
import type { FromRunner, RunFailure, RunnerModule, RunnerSettings, RunSpec, ToRunner } from './runner-protocol.js';

let settings: RunnerSettings | undefined;
/** The providers that passed the check at start: what every session is created with. */
let providers: string[] = ['cpu'];
let cache: SessionCache | undefined;
const running = new Map<string, AbortController>();
/** Tasks' modules, imported once: the loader's resolution is not free, and jobs can be a few ms. */
const modules = new Map<string, Promise<RunnerModule>>();

const send = (message: FromRunner) => void process.send!(message);

process.on('message', (message: ToRunner) => {
  switch (message.type) {
    case 'init':
      settings = message.settings;
      cache = new SessionCache({ budgetBytes: settings.sessionCacheBytes, keepAliveMs: settings.keepAliveMs });
      void checkProviders(settings.executionProviders).then((check) => {
        providers = check.usable;
        send({ type: 'ready', providers: check });
      });
      break;
    case 'run':
      void run(message.spec);
      break;
    case 'cancel':
      running.get(message.jobId)?.abort(new CancelledError());
      break;
  }
});
process.on('disconnect', () => process.exit(0));

class CancelledError extends Error {
  override name = 'CancelledError';
}

async function run(spec: RunSpec) {
  const abort = new AbortController();
  running.set(spec.jobId, abort);
  try {
    let loading = modules.get(spec.module);
    if (!loading) modules.set(spec.module, (loading = import(spec.module) as Promise<RunnerModule>));
    const task = await loading;
    const result = await task.runInRunner(spec.input, {
      signal: abort.signal,
      emit: (name, data) => send({ type: 'event', jobId: spec.jobId, name, data }),
      cache: cache!,
      providers,
      previewIntervalMs: settings!.previewIntervalMs,
    });
    send({ type: 'done', jobId: spec.jobId, result, warm: cache!.keys, cacheBytes: cache!.sizeBytes });
  } catch (err) {
    send({ type: 'failed', jobId: spec.jobId, error: describe(err), warm: cache!.keys, cacheBytes: cache!.sizeBytes });
  } finally {
    running.delete(spec.jobId);
  }
}

function describe(err: unknown): RunFailure {
  const e = err instanceof Error ? err : new Error(String(err));
  if (e instanceof CancelledError) return { code: 'CANCELLED', message: 'cancelled', retryable: false };
  // A task's own verdict: permanent ones (a model that will not load) keep their stack for the log.
  if (e instanceof JobFailure) return { code: e.code, message: e.message, retryable: e.retryable, ...(e.retryable ? {} : { stack: e.stack }) };
  // The pipeline refused the request itself (a size or setting the model cannot do): trying
  // again would be refused again.
  if (e instanceof KilnError) return { code: 'INVALID_REQUEST', message: e.message, retryable: false };
  return { code: 'INFERENCE_FAILED', message: e.message, retryable: true, stack: e.stack };
}
