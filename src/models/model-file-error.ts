import { KilnError } from '../errors.js';

/**
 * A model or adapter file that Kiln refuses: malformed, inconsistent, unsafe or unusable. The
 * message is one sentence about the file's contents, safe to show to whoever supplied it; it
 * never names server-side paths.
 */
export class ModelFileError extends KilnError {
  constructor(message: string) {
    super('BAD_USER_INPUT', message);
    this.name = 'ModelFileError';
  }
}

/** A name taken from a file, quoted and cut short, for messages. */
export function quoteName(name: string): string {
  return JSON.stringify(name.length > 120 ? `${name.slice(0, 117)}...` : name);
}
