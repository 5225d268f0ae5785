import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Training: datasets (their canonical images and unfinished uploads), the record of trainings whose
 * files left behind were swept, and how a trained LoRA adapter was made (`models.training`).
 */
export class Training1796191109423 implements MigrationInterface {
  name = 'Training1796191109423';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query("CREATE TABLE \"datasets\" (\"id\" uuid NOT NULL, \"name\" text NOT NULL, \"status\" text NOT NULL, \"resolution\" integer, \"images\" jsonb NOT NULL DEFAULT '[]', \"image_count\" integer NOT NULL DEFAULT '0', \"size_bytes\" bigint NOT NULL DEFAULT '0', \"sha256\" text, \"upload_files\" jsonb NOT NULL DEFAULT '[]', \"created_at\" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), \"ready_at\" TIMESTAMP WITH TIME ZONE, CONSTRAINT \"datasets_status_check\" CHECK (status IN ('UPLOADING','CHECKING','READY')), CONSTRAINT \"PK_1bf831e43c559a240303e23d038\" PRIMARY KEY (\"id\"))");
    await runner.query("CREATE INDEX \"datasets_created\" ON \"datasets\"  (\"created_at\", \"id\") ");
    await runner.query("CREATE INDEX \"datasets_unfinished\" ON \"datasets\"  (\"created_at\") WHERE status <> 'READY'");
    await runner.query("CREATE TABLE \"training_sweeps\" (\"job_id\" uuid NOT NULL, \"swept_at\" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT \"PK_911dcb0370ada3f24d2d2ac25fa\" PRIMARY KEY (\"job_id\"))");
    await runner.query("ALTER TABLE \"models\" ADD \"training\" jsonb");
    await runner.query("ALTER TABLE \"training_sweeps\" ADD CONSTRAINT \"training_sweeps_job_fk\" FOREIGN KEY (\"job_id\") REFERENCES \"jobs\"(\"id\") ON DELETE CASCADE ON UPDATE NO ACTION");
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query("ALTER TABLE \"training_sweeps\" DROP CONSTRAINT \"training_sweeps_job_fk\"");
    await runner.query("ALTER TABLE \"models\" DROP COLUMN \"training\"");
    await runner.query("DROP TABLE \"training_sweeps\"");
    await runner.query("DROP INDEX \"public\".\"datasets_unfinished\"");
    await runner.query("DROP INDEX \"public\".\"datasets_created\"");
    await runner.query("DROP TABLE \"datasets\"");
  }
}
