import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { KilnError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { codeRequestErrors, createMaskError } from '../../src/server/errors.js';

describe('errors at the edge', () => {
  const log = createLogger('silent');
  const wrapped = (original: Error) => new GraphQLError(original.message, { originalError: original, path: ['generate'] });

  it('masks unexpected errors: a fixed message and INTERNAL_SERVER_ERROR, no stack', () => {
    const masked = createMaskError(log, false)(wrapped(new Error('connection to 10.0.0.5 refused: password=hunter2')), 'Unexpected error.') as GraphQLError;
    expect(masked.message).toBe('Unexpected error.');
    expect(masked.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR' });
    expect(JSON.stringify(masked.toJSON())).not.toMatch(/hunter2|\n\s+at /);
  });

  it('shows the message and stack only with debug on', () => {
    const shown = createMaskError(log, true)(wrapped(new Error('boom')), 'Unexpected error.') as GraphQLError;
    expect(shown.message).toBe('boom');
    expect(shown.extensions.stack).toMatch(/Error: boom/);
  });

  it('keeps a KilnError as it is: its code, message and extensions', () => {
    const kept = createMaskError(log, false)(wrapped(new KilnError('BAD_USER_INPUT', 'input.prompt must not be empty', { field: 'input.prompt' })), 'x') as GraphQLError;
    expect(kept.message).toBe('input.prompt must not be empty');
    expect(kept.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'input.prompt' });
  });

  it('codes request errors with contract codes only', () => {
    const [validation, tooLarge, kept] = codeRequestErrors([
      new GraphQLError('Cannot query field', { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }),
      new GraphQLError('File size limit exceeded', { extensions: { http: { status: 413 } } }),
      new GraphQLError('no', { extensions: { code: 'NOT_FOUND' } }),
    ]);
    expect(validation!.extensions.code).toBe('BAD_USER_INPUT');
    expect(tooLarge!.extensions.code).toBe('PAYLOAD_TOO_LARGE');
    expect(kept!.extensions.code).toBe('NOT_FOUND');
  });
});
