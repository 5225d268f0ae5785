import { EntitySchema } from 'typeorm';
import { createdAt } from './columns.js';

/** A client's idempotency key and what its first request made. */
export interface IdempotencyKey {
  /** Whose key it is (the API key's id once keys exist; '' for anonymous clients). */
  scope: string;
  key: string;
  /** Hash of the operation and its input: the same key with another input is a conflict. */
  requestHash: string;
  jobIds: string[];
  createdAt: Date;
  expiresAt: Date;
}

export const IdempotencyKeyEntity = new EntitySchema<IdempotencyKey>({
  name: 'IdempotencyKey',
  tableName: 'idempotency_keys',
  columns: {
    scope: { type: 'text', primary: true },
    key: { type: 'text', primary: true },
    requestHash: { type: 'text', name: 'request_hash' },
    jobIds: { type: 'uuid', array: true, name: 'job_ids', default: () => "'{}'" },
    createdAt,
    expiresAt: { type: 'timestamptz', name: 'expires_at' },
  },
  indices: [{ name: 'idempotency_keys_expires', columns: ['expiresAt'] }],
});
