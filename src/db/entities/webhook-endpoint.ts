import { EntitySchema, type EntitySchemaColumnOptions } from 'typeorm';
import { createdAt } from './columns.js';

/** A signing secret, and the one it replaced while that one still signs too. */
export interface SigningSecret {
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
  secretRotatedAt: Date | null;
}

export const signingSecretColumns: Record<keyof SigningSecret, EntitySchemaColumnOptions> = {
  secret: { type: 'text' },
  previousSecret: { type: 'text', name: 'previous_secret', nullable: true },
  previousSecretExpiresAt: { type: 'timestamptz', name: 'previous_secret_expires_at', nullable: true },
  secretRotatedAt: { type: 'timestamptz', name: 'secret_rotated_at', nullable: true },
};

/**
 * A global subscription (`createWebhook`): the events of every job, or of some kinds, POSTed to
 * one URL. It is disabled, with the reason, after too many failed attempts in a row.
 */
export interface WebhookEndpoint extends SigningSecret {
  id: string;
  url: string;
  events: string[];
  /** Kinds whose jobs it hears; null: every kind. */
  kinds: string[] | null;
  /** Failed attempts since the last delivered one. */
  failureStreak: number;
  disabledAt: Date | null;
  disabledReason: string | null;
  createdAt: Date;
}

export const WebhookEndpointEntity = new EntitySchema<WebhookEndpoint>({
  name: 'WebhookEndpoint',
  tableName: 'webhook_endpoints',
  columns: {
    id: { type: 'uuid', primary: true, generated: 'uuid' },
    url: { type: 'text' },
    events: { type: 'text', array: true },
    kinds: { type: 'text', array: true, nullable: true },
    ...signingSecretColumns,
    failureStreak: { type: 'int', name: 'failure_streak', default: 0 },
    disabledAt: { type: 'timestamptz', name: 'disabled_at', nullable: true },
    disabledReason: { type: 'text', name: 'disabled_reason', nullable: true },
    createdAt,
  },
});
