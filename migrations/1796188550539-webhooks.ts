import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Turns each job event into the webhook deliveries it calls for, in the transaction that appends
 * the event, so that no event is ever lost between its commit and its deliveries, whatever code
 * appended it. The first RUNNING event of an attempt is STARTED, later ones PROGRESS (at most
 * one per 500 ms of event time per job and webhook), the terminal ones say how the job ended.
 * The rows are an outbox: a dispatcher in every process puts each on the delivery queue
 * (src/webhooks/outbox.ts), woken by the NOTIFY.
 */
const DELIVERIES_FUNCTION = `CREATE FUNCTION kiln_webhook_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ev text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM job_webhooks WHERE job_id = NEW.job_id)
     AND NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE disabled_at IS NULL) THEN
    RETURN NULL;
  END IF;
  IF NEW.status IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN
    ev := NEW.status;
  ELSIF NEW.status = 'RUNNING' THEN
    ev := CASE WHEN EXISTS (
        SELECT 1 FROM job_events p WHERE p.job_id = NEW.job_id AND p.seq = NEW.seq - 1 AND p.status = 'RUNNING' AND p.attempt = NEW.attempt
      ) THEN 'PROGRESS' ELSE 'STARTED' END;
  ELSE
    RETURN NULL;
  END IF;
  INSERT INTO webhook_deliveries (job_id, endpoint_id, url, event, event_seq, event_at)
  SELECT NEW.job_id, t.endpoint_id, t.url, ev, NEW.seq, NEW.at
  FROM (
    SELECT NULL::uuid AS endpoint_id, w.url FROM job_webhooks w WHERE w.job_id = NEW.job_id AND ev = ANY (w.events)
    UNION ALL
    SELECT e.id, e.url FROM webhook_endpoints e JOIN jobs j ON j.id = NEW.job_id
    WHERE e.disabled_at IS NULL AND ev = ANY (e.events) AND (e.kinds IS NULL OR j.kind = ANY (e.kinds))
  ) t
  WHERE ev <> 'PROGRESS' OR NOT EXISTS (
    SELECT 1 FROM webhook_deliveries d
    WHERE d.job_id = NEW.job_id AND d.event_at > NEW.at - interval '500 milliseconds' AND d.event = 'PROGRESS'
      AND d.endpoint_id IS NOT DISTINCT FROM t.endpoint_id
  );
  IF FOUND THEN
    PERFORM pg_notify('kiln_webhooks', '');
  END IF;
  RETURN NULL;
END
$$`;

export class Webhooks1796188550539 implements MigrationInterface {
  name = 'Webhooks1796188550539';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query("CREATE TABLE \"webhook_endpoints\" (\"id\" uuid NOT NULL DEFAULT gen_random_uuid(), \"url\" text NOT NULL, \"events\" text array NOT NULL, \"kinds\" text array, \"secret\" text NOT NULL, \"previous_secret\" text, \"previous_secret_expires_at\" TIMESTAMP WITH TIME ZONE, \"secret_rotated_at\" TIMESTAMP WITH TIME ZONE, \"failure_streak\" integer NOT NULL DEFAULT '0', \"disabled_at\" TIMESTAMP WITH TIME ZONE, \"disabled_reason\" text, \"created_at\" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT \"PK_054c4cfb95223732f5939d2d546\" PRIMARY KEY (\"id\"))");
    await runner.query("CREATE TABLE \"job_webhooks\" (\"job_id\" uuid NOT NULL, \"url\" text NOT NULL, \"events\" text array NOT NULL, CONSTRAINT \"PK_2d9f22a40aa651c3feaf1f47f85\" PRIMARY KEY (\"job_id\"))");
    await runner.query("CREATE TABLE \"job_webhook_secret\" (\"id\" integer NOT NULL DEFAULT '1', \"secret\" text NOT NULL, \"previous_secret\" text, \"previous_secret_expires_at\" TIMESTAMP WITH TIME ZONE, \"secret_rotated_at\" TIMESTAMP WITH TIME ZONE, CONSTRAINT \"job_webhook_secret_one_row\" CHECK (id = 1), CONSTRAINT \"PK_b75ca83f12020bd1f24e5772df5\" PRIMARY KEY (\"id\"))");
    await runner.query("CREATE TABLE \"webhook_deliveries\" (\"id\" uuid NOT NULL DEFAULT gen_random_uuid(), \"job_id\" uuid NOT NULL, \"endpoint_id\" uuid, \"url\" text NOT NULL, \"event\" text NOT NULL, \"event_seq\" integer NOT NULL, \"event_at\" TIMESTAMP WITH TIME ZONE NOT NULL, \"status\" text NOT NULL DEFAULT 'PENDING', \"queued\" boolean NOT NULL DEFAULT false, \"attempts\" integer NOT NULL DEFAULT '0', \"next_attempt_at\" TIMESTAMP WITH TIME ZONE, \"give_up_at\" TIMESTAMP WITH TIME ZONE, \"last_status_code\" integer, \"last_error\" text, \"created_at\" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), \"finished_at\" TIMESTAMP WITH TIME ZONE, CONSTRAINT \"webhook_deliveries_status_check\" CHECK (status IN ('PENDING','DELIVERED','FAILED')), CONSTRAINT \"PK_535dd409947fb6d8fc6dfc0112a\" PRIMARY KEY (\"id\"))");
    await runner.query("CREATE INDEX \"webhook_deliveries_job\" ON \"webhook_deliveries\"  (\"job_id\", \"event_at\") ");
    await runner.query("CREATE INDEX \"webhook_deliveries_endpoint\" ON \"webhook_deliveries\"  (\"endpoint_id\", \"created_at\", \"id\") ");
    await runner.query("CREATE INDEX \"webhook_deliveries_unqueued\" ON \"webhook_deliveries\"  (\"created_at\") WHERE NOT queued");
    await runner.query("CREATE INDEX \"webhook_deliveries_finished\" ON \"webhook_deliveries\"  (\"finished_at\") WHERE finished_at IS NOT NULL");
    await runner.query("CREATE TABLE \"webhook_attempts\" (\"delivery_id\" uuid NOT NULL, \"attempt\" integer NOT NULL, \"sender\" text NOT NULL, \"started_at\" TIMESTAMP WITH TIME ZONE NOT NULL, \"duration_ms\" double precision NOT NULL, \"status_code\" integer, \"error\" text, \"response_body\" text, \"next_retry_at\" TIMESTAMP WITH TIME ZONE, CONSTRAINT \"PK_5ec32a71f45112dcc2ef75373a6\" PRIMARY KEY (\"delivery_id\", \"attempt\"))");
    await runner.query("ALTER TABLE \"job_webhooks\" ADD CONSTRAINT \"job_webhooks_job_fk\" FOREIGN KEY (\"job_id\") REFERENCES \"jobs\"(\"id\") ON DELETE CASCADE ON UPDATE NO ACTION");
    await runner.query("ALTER TABLE \"webhook_deliveries\" ADD CONSTRAINT \"webhook_deliveries_job_fk\" FOREIGN KEY (\"job_id\") REFERENCES \"jobs\"(\"id\") ON DELETE CASCADE ON UPDATE NO ACTION");
    await runner.query("ALTER TABLE \"webhook_deliveries\" ADD CONSTRAINT \"webhook_deliveries_endpoint_fk\" FOREIGN KEY (\"endpoint_id\") REFERENCES \"webhook_endpoints\"(\"id\") ON DELETE CASCADE ON UPDATE NO ACTION");
    await runner.query("ALTER TABLE \"webhook_attempts\" ADD CONSTRAINT \"webhook_attempts_delivery_fk\" FOREIGN KEY (\"delivery_id\") REFERENCES \"webhook_deliveries\"(\"id\") ON DELETE CASCADE ON UPDATE NO ACTION");
    await runner.query(DELIVERIES_FUNCTION);
    await runner.query('CREATE TRIGGER job_events_webhooks AFTER INSERT ON job_events FOR EACH ROW EXECUTE FUNCTION kiln_webhook_deliveries()');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TRIGGER job_events_webhooks ON job_events');
    await runner.query('DROP FUNCTION kiln_webhook_deliveries()');
    await runner.query("ALTER TABLE \"webhook_attempts\" DROP CONSTRAINT \"webhook_attempts_delivery_fk\"");
    await runner.query("ALTER TABLE \"webhook_deliveries\" DROP CONSTRAINT \"webhook_deliveries_endpoint_fk\"");
    await runner.query("ALTER TABLE \"webhook_deliveries\" DROP CONSTRAINT \"webhook_deliveries_job_fk\"");
    await runner.query("ALTER TABLE \"job_webhooks\" DROP CONSTRAINT \"job_webhooks_job_fk\"");
    await runner.query("DROP TABLE \"webhook_attempts\"");
    await runner.query("DROP INDEX \"public\".\"webhook_deliveries_finished\"");
    await runner.query("DROP INDEX \"public\".\"webhook_deliveries_unqueued\"");
    await runner.query("DROP INDEX \"public\".\"webhook_deliveries_endpoint\"");
    await runner.query("DROP INDEX \"public\".\"webhook_deliveries_job\"");
    await runner.query("DROP TABLE \"webhook_deliveries\"");
    await runner.query("DROP TABLE \"job_webhook_secret\"");
    await runner.query("DROP TABLE \"job_webhooks\"");
    await runner.query("DROP TABLE \"webhook_endpoints\"");
  }
}
