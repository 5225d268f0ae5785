import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ModelsAndUploads1795434810354 implements MigrationInterface {
  name = 'ModelsAndUploads1795434810354';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query("CREATE TABLE \"model_uploads\" (\"id\" uuid NOT NULL, \"name\" text NOT NULL, \"kind\" text NOT NULL, \"base_model_id\" uuid, \"trigger_word\" text, \"files\" jsonb NOT NULL DEFAULT '[]', \"status\" text NOT NULL DEFAULT 'PENDING', \"expires_at\" TIMESTAMP WITH TIME ZONE NOT NULL, \"created_at\" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT \"PK_7dc6f23c5bffd2e96993dd43626\" PRIMARY KEY (\"id\"))");
    await runner.query("CREATE INDEX \"model_uploads_pending_expiry\" ON \"model_uploads\"  (\"expires_at\") WHERE status = 'PENDING'");
    await runner.query("ALTER TABLE \"models\" ADD \"deleted_at\" TIMESTAMP WITH TIME ZONE");
    // The same bytes may come back once their model was deleted (TypeORM does not diff WHERE).
    await runner.query("DROP INDEX \"public\".\"models_sha256_key\"");
    await runner.query("CREATE UNIQUE INDEX \"models_sha256_key\" ON \"models\" (\"sha256\") WHERE deleted_at IS NULL");
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query("DROP INDEX \"public\".\"models_sha256_key\"");
    await runner.query("CREATE UNIQUE INDEX \"models_sha256_key\" ON \"models\" (\"sha256\")");
    await runner.query("ALTER TABLE \"models\" DROP COLUMN \"deleted_at\"");
    await runner.query("DROP INDEX \"public\".\"model_uploads_pending_expiry\"");
    await runner.query("DROP TABLE \"model_uploads\"");
  }
}
