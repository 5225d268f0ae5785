import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One JSON line per record, the shape log collectors expect; readable lines instead when
 * `pretty` (development at a terminal).
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}, pretty = false): Logger {
  return pino({
    level,
    base: { pid: process.pid, ...bindings },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  });
}
