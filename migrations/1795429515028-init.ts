import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1795429515028 implements MigrationInterface {
  name = 'Init1795429515028';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query("CREATE TABLE \"models\" (\"id\" uuid NOT NULL DEFAULT gen_random_uuid(), \"name\" text NOT NULL, \"kind\" text NOT NULL, \"pipeline\" text NOT NULL, \"base_model_id\" uuid, \"trigger_word\" text, \"storage_key\" text NOT NULL, \"files\" jsonb NOT NULL, \"size_bytes\" bigint NOT NULL, \"sha256\" text NOT NULL, \"is_default\" boolean NOT NULL DEFAULT false, \"builtin\" boolean NOT NULL DEFAULT false, \"defaults\" jsonb NOT NULL DEFAULT '{}', \"created_at\" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT \"PK_ef9ed7160ea69013636466bf2d5\" PRIMARY KEY (\"id\"))");
    await runner.query("CREATE UNIQUE INDEX \"models_sha256_key\" ON \"models\"  (\"sha256\") ");
    await runner.query("CREATE UNIQUE INDEX \"models_one_default\" ON \"models\"  (\"is_default\") WHERE is_default");
    await runner.query("CREATE INDEX \"models_kind_created\" ON \"models\"  (\"kind\", \"created_at\", \"id\") ");
    await runner.query("CREATE TABLE \"generations\" (\"id\" uuid NOT NULL DEFAULT gen_random_uuid(), \"status\" text NOT NULL, \"current_step\" text NOT NULL, \"progress\" double precision NOT NULL DEFAULT '0', \"prompt\" text NOT NULL, \"negative_prompt\" text, \"model_id\" uuid NOT NULL, \"lora_id\" uuid, \"lora_weight\" double precision, \"num_images\" integer NOT NULL, \"steps\" integer NOT NULL, \"guidance_scale\" double precision NOT NULL, \"width\" integer NOT NULL, \"height\" integer NOT NULL, \"seed\" bigint NOT NULL, \"priority\" integer NOT NULL DEFAULT '0', \"previews\" boolean NOT NULL DEFAULT true, \"retry_count\" integer NOT NULL DEFAULT '0', \"lease\" integer NOT NULL DEFAULT '0', \"lease_expires_at\" TIMESTAMP WITH TIME ZONE, \"event_seq\" integer NOT NULL DEFAULT '0', \"error_code\" text, \"error_message\" text, \"error_retryable\" boolean, \"timing\" jsonb, \"created_at\" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), \"started_at\" TIMESTAMP WITH TIME ZONE, \"completed_at\" TIMESTAMP WITH TIME ZONE, CONSTRAINT \"generations_status_check\" CHECK (status IN ('PENDING','RUNNING','COMPLETED','FAILED','CANCELLED')), CONSTRAINT \"PK_9d2a52fbde1fba42c24ec42ddd2\" PRIMARY KEY (\"id\"))");
    await runner.query("CREATE INDEX \"generations_created\" ON \"generations\"  (\"created_at\", \"id\") ");
    await runner.query("CREATE INDEX \"generations_status_created\" ON \"generations\"  (\"status\", \"created_at\", \"id\") ");
    await runner.query("CREATE INDEX \"generations_model\" ON \"generations\"  (\"model_id\") ");
    await runner.query("CREATE INDEX \"generations_lora\" ON \"generations\"  (\"lora_id\") ");
    await runner.query("CREATE TABLE \"generation_events\" (\"generation_id\" uuid NOT NULL, \"seq\" integer NOT NULL, \"attempt\" integer NOT NULL, \"step\" text NOT NULL, \"status\" text NOT NULL, \"step_index\" integer, \"step_count\" integer, \"progress\" double precision NOT NULL, \"message\" text, \"eta_seconds\" double precision, \"preview\" text, \"at\" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT \"PK_6f706b927dca5dabc9929747583\" PRIMARY KEY (\"generation_id\", \"seq\"))");
    await runner.query("CREATE TABLE \"images\" (\"id\" uuid NOT NULL DEFAULT gen_random_uuid(), \"generation_id\" uuid NOT NULL, \"index\" integer NOT NULL, \"storage_key\" text NOT NULL, \"width\" integer NOT NULL, \"height\" integer NOT NULL, \"bytes\" integer NOT NULL, \"sha256\" text NOT NULL, \"seed\" bigint NOT NULL, \"mime_type\" text NOT NULL, \"created_at\" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT \"images_generation_index\" UNIQUE (\"generation_id\", \"index\"), CONSTRAINT \"PK_1fe148074c6a1a91b63cb9ee3c9\" PRIMARY KEY (\"id\"))");
    await runner.query("ALTER TABLE \"models\" ADD CONSTRAINT \"models_base_model_fk\" FOREIGN KEY (\"base_model_id\") REFERENCES \"models\"(\"id\") ON DELETE RESTRICT ON UPDATE NO ACTION");
    await runner.query("ALTER TABLE \"generations\" ADD CONSTRAINT \"generations_model_fk\" FOREIGN KEY (\"model_id\") REFERENCES \"models\"(\"id\") ON DELETE RESTRICT ON UPDATE NO ACTION");
    await runner.query("ALTER TABLE \"generations\" ADD CONSTRAINT \"generations_lora_fk\" FOREIGN KEY (\"lora_id\") REFERENCES \"models\"(\"id\") ON DELETE RESTRICT ON UPDATE NO ACTION");
    await runner.query("ALTER TABLE \"generation_events\" ADD CONSTRAINT \"generation_events_generation_fk\" FOREIGN KEY (\"generation_id\") REFERENCES \"generations\"(\"id\") ON DELETE CASCADE ON UPDATE NO ACTION");
    await runner.query("ALTER TABLE \"images\" ADD CONSTRAINT \"images_generation_fk\" FOREIGN KEY (\"generation_id\") REFERENCES \"generations\"(\"id\") ON DELETE CASCADE ON UPDATE NO ACTION");
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query("ALTER TABLE \"images\" DROP CONSTRAINT \"images_generation_fk\"");
    await runner.query("ALTER TABLE \"generation_events\" DROP CONSTRAINT \"generation_events_generation_fk\"");
    await runner.query("ALTER TABLE \"generations\" DROP CONSTRAINT \"generations_lora_fk\"");
    await runner.query("ALTER TABLE \"generations\" DROP CONSTRAINT \"generations_model_fk\"");
    await runner.query("ALTER TABLE \"models\" DROP CONSTRAINT \"models_base_model_fk\"");
    await runner.query("DROP TABLE \"images\"");
    await runner.query("DROP TABLE \"generation_events\"");
    await runner.query("DROP INDEX \"public\".\"generations_lora\"");
    await runner.query("DROP INDEX \"public\".\"generations_model\"");
    await runner.query("DROP INDEX \"public\".\"generations_status_created\"");
    await runner.query("DROP INDEX \"public\".\"generations_created\"");
    await runner.query("DROP TABLE \"generations\"");
    await runner.query("DROP INDEX \"public\".\"models_kind_created\"");
    await runner.query("DROP INDEX \"public\".\"models_one_default\"");
    await runner.query("DROP INDEX \"public\".\"models_sha256_key\"");
    await runner.query("DROP TABLE \"models\"");
  }
}
