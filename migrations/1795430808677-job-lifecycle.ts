import type { MigrationInterface, QueryRunner } from 'typeorm';

export class JobLifecycle1795430808677 implements MigrationInterface {
  name = 'JobLifecycle1795430808677';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query("CREATE TABLE \"generation_attempts\" (\"generation_id\" uuid NOT NULL, \"lease\" integer NOT NULL, \"attempt\" integer NOT NULL, \"worker\" text NOT NULL, \"started_at\" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), \"ended_at\" TIMESTAMP WITH TIME ZONE, \"outcome\" text, \"error_code\" text, \"error_message\" text, \"error_retryable\" boolean, CONSTRAINT \"PK_b4ad6be82f3e41de7c289d014c9\" PRIMARY KEY (\"generation_id\", \"lease\"))");
    await runner.query("CREATE TABLE \"idempotency_keys\" (\"scope\" text NOT NULL, \"key\" text NOT NULL, \"request_hash\" text NOT NULL, \"generation_ids\" uuid array NOT NULL DEFAULT '{}', \"created_at\" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), \"expires_at\" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT \"PK_15de2f76fa9f27ad8f330983607\" PRIMARY KEY (\"scope\", \"key\"))");
    await runner.query("CREATE INDEX \"idempotency_keys_expires\" ON \"idempotency_keys\"  (\"expires_at\") ");
    await runner.query("ALTER TABLE \"generations\" ADD \"cancel_requested_at\" TIMESTAMP WITH TIME ZONE");
    await runner.query("ALTER TABLE \"generations\" ADD \"deadline_at\" TIMESTAMP WITH TIME ZONE");
    await runner.query("CREATE INDEX \"generations_running_lease\" ON \"generations\"  (\"lease_expires_at\") WHERE status = 'RUNNING'");
    await runner.query("CREATE INDEX \"generations_pending_deadline\" ON \"generations\"  (\"deadline_at\") WHERE status = 'PENDING' AND deadline_at IS NOT NULL");
    await runner.query("ALTER TABLE \"generation_attempts\" ADD CONSTRAINT \"generation_attempts_generation_fk\" FOREIGN KEY (\"generation_id\") REFERENCES \"generations\"(\"id\") ON DELETE CASCADE ON UPDATE NO ACTION");
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query("ALTER TABLE \"generation_attempts\" DROP CONSTRAINT \"generation_attempts_generation_fk\"");
    await runner.query("DROP INDEX \"public\".\"generations_pending_deadline\"");
    await runner.query("DROP INDEX \"public\".\"generations_running_lease\"");
    await runner.query("ALTER TABLE \"generations\" DROP COLUMN \"deadline_at\"");
    await runner.query("ALTER TABLE \"generations\" DROP COLUMN \"cancel_requested_at\"");
    await runner.query("DROP INDEX \"public\".\"idempotency_keys_expires\"");
    await runner.query("DROP TABLE \"idempotency_keys\"");
    await runner.query("DROP TABLE \"generation_attempts\"");
  }
}
