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

  it('tells a database that cannot be reached from other database errors, in the shapes pg, pg-pool and TypeORM give them', () => {
    const mask = createMaskError(log, false);
    const coded = (err: Error) => (mask(wrapped(err), 'Unexpected error.') as GraphQLError).extensions;
    const withProps = (message: string, props: Record<string, unknown>) => Object.assign(new Error(message), props);
    const refused = withProps('connect ECONNREFUSED 127.0.0.1:5432', { code: 'ECONNREFUSED' });
    const outages = [
      refused,
      new AggregateError([refused], 'all addresses refused'),
      withProps('terminating connection due to administrator command', { code: '57P01' }),
      withProps('the database system is starting up', { code: '57P03' }),
      withProps('could not receive data from client', { code: '08006' }),
      new Error('Connection terminated unexpectedly'),
      new Error('Connection terminated due to connection timeout', { cause: new Error('Connection terminated unexpectedly') }),
      new Error('timeout exceeded when trying to connect'),
      // TypeORM's QueryFailedError keeps the driver's error and copies its code.
      withProps('Query failed', { driverError: withProps('read ECONNRESET', { code: 'ECONNRESET' }) }),
      // …and releases a runner whose connection broke, so the transaction's next statement fails so.
      withProps('Query runner already released. Cannot run queries anymore.', { name: 'QueryRunnerAlreadyReleasedError' }),
    ];
    for (const err of outages) expect(coded(err), err.message).toMatchObject({ code: 'UNAVAILABLE', retryAfterSeconds: 5, http: { status: 503, headers: { 'Retry-After': '5' } } });
    for (const err of [
      withProps('duplicate key value violates unique constraint', { code: '23505' }),
      withProps('syntax error at or near "SELEC"', { code: '42601' }),
      new Error('Connection terminated by a bug'),
    ]) {
      expect(coded(err), err.message).toEqual({ code: 'INTERNAL_SERVER_ERROR' });
    }
  });

  it('gives an UNAVAILABLE refusal its HTTP 503 and Retry-After', () => {
    const refused = createMaskError(log, false)(wrapped(new KilnError('UNAVAILABLE', 'storage is unavailable', { retryAfterSeconds: 12.2 })), 'x') as GraphQLError;
    expect(refused.extensions).toEqual({ code: 'UNAVAILABLE', retryAfterSeconds: 13, http: { status: 503, headers: { 'Retry-After': '13' } } });
  });

  it('codes request errors with contract codes only', () => {
    const [validation, tooLarge, csrf, kept] = codeRequestErrors([
      new GraphQLError('Cannot query field', { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }),
      new GraphQLError('File size limit exceeded', { extensions: { http: { status: 413 } } }),
      new GraphQLError('Required CSRF header(s) not present', { extensions: { http: { status: 403 } } }),
      new GraphQLError('no', { extensions: { code: 'NOT_FOUND' } }),
    ]);
    expect(validation!.extensions.code).toBe('BAD_USER_INPUT');
    expect(tooLarge!.extensions.code).toBe('PAYLOAD_TOO_LARGE');
    expect(csrf!.extensions.code).toBe('FORBIDDEN');
    expect(kept!.extensions.code).toBe('NOT_FOUND');
  });
});
