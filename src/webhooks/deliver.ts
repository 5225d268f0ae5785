import type { JobWithMetadata, PgBoss } from 'pg-boss';
import type { DataSource } from 'typeorm';
import type { WebhookSettings } from '../config.js';
import type { SigningSecret } from '../db/entities/webhook-endpoint.js';
import { queryRows } from '../db/sql.js';
import { WORKER_ID } from '../jobs/attempt.js';
import { inTransaction } from '../jobs/queue.js';
import type { Logger } from '../log.js';
import type { Storage } from '../storage/storage.js';
import { DELIVERY_QUEUE, deliveryData } from './delivery-queue.js';
import { recordEndpointOutcome } from './endpoints.js';
import type { PostResult, WebhookPoster } from './http-post.js';
import { webhookBody } from './payload.js';
import { describeResult, judge, type Verdict } from './retry-policy.js';
import { jobWebhookSecret } from './secrets.js';
import { signatureHeader, signingSecrets } from './signing.js';

export interface DeliveryDeps {
  ds: DataSource;
  boss: PgBoss;
  storage: Storage;
  poster: WebhookPoster;
  settings: WebhookSettings;
  /** Origin of the signed links in bodies (local storage serves files through the API). */
  baseUrl: () => string;
  userAgent: string;
  log: Logger;
}

/** What pg-boss's settle calls return at run time (its typings declare an empty interface). */
interface Settled {
  affected: number;
}

/** The queue gave the job to another process meanwhile: nothing of this attempt is kept. */
class SettleLost extends Error {}

/** A delivery as one attempt needs it: where, what, and the secrets that sign it. */
interface Target {
  id: string;
  jobId: string;
  endpointId: string | null;
  url: string;
  event: string;
  eventSeq: number;
  status: string;
  attempts: number;
  giveUpAt: Date | null;
  disabledReason: string | null;
  /** The subscription's, or for a job's own webhook the job webhook secret. */
  secrets: SigningSecret;
}

/**
 * Runs one attempt of the delivery a queue job names: signs and POSTs the body, then in one
 * transaction fenced by the queue job records the attempt, updates the delivery (and its
 * subscription's failure streak) and either completes the job or fails it to run again when
 * the retry is due. Returns when the next attempt is due, if one is scheduled.
 */
export async function deliver(deps: DeliveryDeps, fetched: JobWithMetadata<unknown>): Promise<Date | undefined> {
  const { ds, boss } = deps;
  const attemptRef = [{ id: fetched.id, retryCount: fetched.retryCount }];
  const skip = async (why: string) => {
    await boss.complete(DELIVERY_QUEUE, attemptRef, { skipped: why });
    return undefined;
  };
  const parsed = deliveryData.safeParse(fetched.data);
  if (!parsed.success) return skip('malformed payload');
  const target = await loadTarget(ds, parsed.data.deliveryId);
  if (!target || target.status !== 'PENDING') return skip('delivery gone or finished');
  if (target.disabledReason) {
    await finishWithoutSending(deps, target, attemptRef, `the webhook is disabled: ${target.disabledReason}`);
    return undefined;
  }
  const body = await webhookBody(ds, deps.storage, deps.baseUrl(), target);
  if (!body) return skip('job gone');

  const timestamp = Math.floor(Date.now() / 1000);
  const secrets = signingSecrets(target.secrets);
  const startedAt = new Date();
  const result = await deps.poster.post(
    new URL(target.url),
    {
      'content-type': 'application/json',
      'user-agent': deps.userAgent,
      'webhook-id': target.id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatureHeader(secrets, target.id, timestamp, body),
    },
    body,
  );
  const attempt = target.attempts + 1;
  let verdict = judge(result, attempt, deps.settings);
  if (verdict.outcome === 'retry' && target.giveUpAt && Date.now() + verdict.delayMs > target.giveUpAt.getTime()) {
    verdict = { outcome: 'failed', error: `${verdict.error}; no retry left (retries end ${deps.settings.retryForSeconds} s after the event or the redelivery, KILN_WEBHOOK_RETRY_FOR_S)` };
  }
  try {
    return await settle(deps, target, attemptRef, { attempt, startedAt, result, verdict });
  } catch (err) {
    if (err instanceof SettleLost) {
      deps.log.warn({ deliveryId: target.id, attempt }, 'the queue gave this delivery to another process; its attempt is not recorded');
      return undefined;
    }
    throw err;
  }
}

async function settle(
  deps: DeliveryDeps,
  t: Target,
  attemptRef: { id: string; retryCount: number }[],
  a: { attempt: number; startedAt: Date; result: PostResult; verdict: Verdict },
): Promise<Date | undefined> {
  return deps.ds.transaction(async (em) => {
    let verdict = a.verdict;
    if (t.endpointId) {
      const disabled = await recordEndpointOutcome(em, t.endpointId, verdict.outcome === 'delivered', describeResult(a.result), deps.settings.disableAfter);
      if (disabled && verdict.outcome === 'retry') verdict = { outcome: 'failed', error: `${verdict.error}; the webhook was ${disabled}` };
    }
    const nextAt = verdict.outcome === 'retry' ? new Date(Date.now() + verdict.delayMs) : null;
    const error = verdict.outcome === 'delivered' ? null : verdict.error;
    const status = verdict.outcome === 'retry' ? 'PENDING' : verdict.outcome === 'delivered' ? 'DELIVERED' : 'FAILED';
    const db = inTransaction(em);
    const updated = await queryRows(
      em,
      `WITH d AS (
         UPDATE webhook_deliveries SET attempts = $2, status = $3, next_attempt_at = $4, last_status_code = $5, last_error = $6,
           finished_at = CASE WHEN $3 = 'PENDING' THEN NULL ELSE now() END
         WHERE id = $1 RETURNING id
       )
       INSERT INTO webhook_attempts (delivery_id, attempt, sender, started_at, duration_ms, status_code, error, response_body, next_retry_at)
       SELECT id, $2, $7, $8, $9, $5, $6, $10, $4 FROM d RETURNING delivery_id`,
      [t.id, a.attempt, status, nextAt, a.result.statusCode ?? null, error, WORKER_ID, a.startedAt, a.result.durationMs, a.result.body ?? null],
    );
    if (!updated.length) {
      // Deleted while it was being sent (its job or its webhook): nothing is left to record.
      await deps.boss.complete(DELIVERY_QUEUE, attemptRef, { skipped: 'delivery gone' }, { db });
      return undefined;
    }
    if (nextAt) {
      const failed = (await deps.boss.fail(DELIVERY_QUEUE, attemptRef, { error }, { db })) as Settled;
      if (failed.affected !== 1) throw new SettleLost();
      await deps.boss.update(DELIVERY_QUEUE, undefined, { id: attemptRef[0]!.id, startAfter: nextAt, db });
    } else {
      const completed = (await deps.boss.complete(DELIVERY_QUEUE, attemptRef, { outcome: verdict.outcome }, { db })) as Settled;
      if (completed.affected !== 1) throw new SettleLost();
    }
    return nextAt ?? undefined;
  });
}

/** Ends a delivery that will not be sent (its subscription was disabled meanwhile). */
async function finishWithoutSending(deps: DeliveryDeps, t: Target, attemptRef: { id: string; retryCount: number }[], why: string) {
  await deps.ds.transaction(async (em) => {
    await em.query(`UPDATE webhook_deliveries SET status = 'FAILED', next_attempt_at = NULL, last_error = $2, finished_at = now() WHERE id = $1`, [t.id, why]);
    await deps.boss.complete(DELIVERY_QUEUE, attemptRef, { outcome: 'failed' }, { db: inTransaction(em) });
  });
}

async function loadTarget(ds: DataSource, id: string): Promise<Target | undefined> {
  const [r] = await queryRows(
    ds,
    `SELECT d.id, d.job_id, d.endpoint_id, d.url, d.event, d.event_seq, d.status, d.attempts, d.give_up_at,
            CASE WHEN e.disabled_at IS NOT NULL THEN COALESCE(e.disabled_reason, 'disabled by hand') END AS disabled_reason,
            s.secret, s.previous_secret, s.previous_secret_expires_at, s.secret_rotated_at
     FROM webhook_deliveries d
     LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id
     LEFT JOIN (SELECT id, secret, previous_secret, previous_secret_expires_at, secret_rotated_at FROM webhook_endpoints
           UNION ALL SELECT NULL, secret, previous_secret, previous_secret_expires_at, secret_rotated_at FROM job_webhook_secret) s
       ON s.id IS NOT DISTINCT FROM d.endpoint_id
     WHERE d.id = $1`,
    [id],
  );
  if (!r) return undefined;
  return {
    id: r.id,
    jobId: r.job_id,
    endpointId: r.endpoint_id,
    url: r.url,
    event: r.event,
    eventSeq: r.event_seq,
    status: r.status,
    attempts: r.attempts,
    giveUpAt: r.give_up_at,
    disabledReason: r.disabled_reason,
    // The job webhook secret is made on first use.
    secrets: r.secret
      ? { secret: r.secret, previousSecret: r.previous_secret, previousSecretExpiresAt: r.previous_secret_expires_at, secretRotatedAt: r.secret_rotated_at }
      : await jobWebhookSecret(ds),
  };
}
