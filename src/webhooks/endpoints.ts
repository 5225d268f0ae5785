import type { DataSource, EntityManager } from 'typeorm';
import { type WebhookEndpoint, WebhookEndpointEntity } from '../db/entities/webhook-endpoint.js';
import { entityFromRow, queryRows } from '../db/sql.js';
import { notFound } from '../errors.js';
import { ROTATE } from './secrets.js';
import { newSecret } from './signing.js';
import type { WebhookEvent } from './webhook-option.js';

export interface NewEndpoint {
  url: string;
  events: readonly WebhookEvent[];
  /** null: every kind. */
  kinds: readonly string[] | null;
}

/** A new subscription and its secret; the secret is never shown again. */
export async function createEndpoint(ds: DataSource, e: NewEndpoint): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const secret = newSecret();
  const [row] = await queryRows(ds, 'INSERT INTO webhook_endpoints (url, events, kinds, secret) VALUES ($1, $2, $3, $4) RETURNING *', [
    e.url,
    [...new Set(e.events)],
    e.kinds ? [...new Set(e.kinds)] : null,
    secret,
  ]);
  return { endpoint: entityFromRow(ds, WebhookEndpointEntity, row!), secret };
}

/** Removes a subscription with its delivery log; its deliveries still queued are dropped. */
export async function deleteEndpoint(ds: DataSource, id: string): Promise<void> {
  const rows = await queryRows(ds, 'DELETE FROM webhook_endpoints WHERE id = $1 RETURNING id', [id]);
  if (!rows.length) throw notFound('webhook', id);
}

/** A new secret for a subscription; the old one also signs for `overlapSeconds`. */
export async function rotateEndpointSecret(ds: DataSource, id: string, overlapSeconds: number): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const secret = newSecret();
  const [row] = await queryRows(ds, `UPDATE webhook_endpoints SET ${ROTATE} WHERE id = $3 RETURNING *`, [overlapSeconds, secret, id]);
  if (!row) throw notFound('webhook', id);
  return { endpoint: entityFromRow(ds, WebhookEndpointEntity, row), secret };
}

/** Turns a disabled subscription back on, its failure streak forgotten. */
export async function enableEndpoint(ds: DataSource, id: string): Promise<WebhookEndpoint> {
  const [row] = await queryRows(ds, 'UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, failure_streak = 0 WHERE id = $1 RETURNING *', [id]);
  if (!row) throw notFound('webhook', id);
  return entityFromRow(ds, WebhookEndpointEntity, row);
}

/**
 * Counts an attempt's outcome against a subscription: a delivered one clears its failure streak;
 * a failed one lengthens it and, at `disableAfter`, disables it saying why. Returns the reason
 * when this attempt disabled it.
 */
export async function recordEndpointOutcome(
  em: EntityManager,
  id: string,
  delivered: boolean,
  what: string,
  disableAfter: number,
): Promise<string | undefined> {
  const reason = `disabled after ${disableAfter} failed attempts in a row (KILN_WEBHOOK_DISABLE_AFTER); the last: ${what}`;
  const rows: { disabling: boolean }[] = await em.query(
    `WITH before AS (SELECT failure_streak, disabled_at FROM webhook_endpoints WHERE id = $1 FOR UPDATE),
     after AS (
       UPDATE webhook_endpoints e SET
         failure_streak = CASE WHEN $2 THEN 0 ELSE b.failure_streak + 1 END,
         disabled_at = CASE WHEN NOT $2 AND b.disabled_at IS NULL AND b.failure_streak + 1 >= $3 THEN now() ELSE b.disabled_at END,
         disabled_reason = CASE WHEN NOT $2 AND b.disabled_at IS NULL AND b.failure_streak + 1 >= $3 THEN $4 ELSE e.disabled_reason END
       FROM before b WHERE e.id = $1
       RETURNING e.disabled_at IS NOT NULL AND b.disabled_at IS NULL AS disabling
     )
     SELECT disabling FROM after`,
    [id, delivered, disableAfter, reason],
  );
  return rows[0]?.disabling ? reason : undefined;
}
