/**
 * How every Kiln command line (src/cli, bench, scripts) reads its options: `--help` (or `-h`)
 * prints the usage on stdout and exits 0; an unknown or malformed option prints what is wrong and
 * the usage on stderr and exits 2, instead of node's ERR_PARSE_ARGS stack trace.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

/** Exit status for a command line Kiln cannot read (as for sh and most tools). */
export const USAGE_EXIT = 2;

/** Prints what is wrong with the command line and its usage, and exits 2. */
export function usageError(usage: string, message: string): never {
  process.stderr.write(`${message}\n${usage}\n`);
  process.exit(USAGE_EXIT);
}

const isParseError = (err: unknown) => err instanceof TypeError && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS');

type Config<O extends ParseArgsOptionsConfig> = { args: string[]; options: O; allowPositionals: boolean; strict: true };

/** The process's options (strictly: unknown ones are refused) and, with `allowPositionals`, its positionals. */
export function parseCommandLine<const O extends ParseArgsOptionsConfig>(
  usage: string,
  options: O,
  { allowPositionals = false, args = process.argv.slice(2) } = {},
): ReturnType<typeof parseArgs<Config<O>>> {
  let parsed;
  try {
    parsed = parseArgs<Config<O>>({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (err) {
    if (isParseError(err)) usageError(usage, (err as Error).message);
    throw err;
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return parsed;
}
