import { pino, type Logger } from 'pino';

export type { Logger };

/** One JSON line per record, the shape log collectors expect. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } });
}
