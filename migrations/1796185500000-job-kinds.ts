import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Generations become jobs of a kind: the lifecycle tables lose the image parameters (kept per
 * kind in `params`), models used by a job move to `job_models`, images become outputs of a media
 * type, and workers report themselves in `workers`. Existing rows are carried over as `image`
 * jobs in the queue of their model's pipeline.
 */
export class JobKinds1796185500000 implements MigrationInterface {
  name = 'JobKinds1796185500000';

  async up(runner: QueryRunner): Promise<void> {
    const q = (sql: string) => runner.query(sql);
    await q(`ALTER TABLE "generations" RENAME TO "jobs"`);
    await q(`ALTER TABLE "jobs" RENAME CONSTRAINT "PK_9d2a52fbde1fba42c24ec42ddd2" TO "PK_cf0a6c42b72fcc7f7c237def345"`);
    await q(`ALTER TABLE "jobs" RENAME CONSTRAINT "generations_status_check" TO "jobs_status_check"`);
    await q(`ALTER TABLE "jobs" ADD "kind" text NOT NULL DEFAULT 'image', ADD "queue" text, ADD "params" jsonb, ADD "affinity" text`);
    await q(`ALTER TABLE "jobs" ALTER COLUMN "kind" DROP DEFAULT`);
    await q(
      `UPDATE "jobs" j SET queue = 'image.' || m.pipeline, params = jsonb_build_object(
         'prompt', j.prompt, 'negativePrompt', j.negative_prompt, 'modelId', j.model_id, 'loraId', j.lora_id,
         'loraWeight', j.lora_weight, 'numImages', j.num_images, 'steps', j.steps, 'guidanceScale', j.guidance_scale,
         'width', j.width, 'height', j.height, 'seed', j.seed, 'previews', j.previews, 'scheduler', j.scheduler)
       FROM "models" m WHERE m.id = j.model_id`,
    );
    await q(`ALTER TABLE "jobs" ALTER COLUMN "queue" SET NOT NULL, ALTER COLUMN "params" SET NOT NULL`);

    await q(`CREATE TABLE "job_models" ("job_id" uuid NOT NULL, "role" text NOT NULL, "model_id" uuid NOT NULL, CONSTRAINT "PK_f9e82be0716d8c75746a82a2e99" PRIMARY KEY ("job_id", "role"))`);
    await q(`CREATE INDEX "job_models_model" ON "job_models"  ("model_id") `);
    await q(`INSERT INTO "job_models" (job_id, role, model_id) SELECT id, 'model', model_id FROM "jobs"`);
    await q(`INSERT INTO "job_models" (job_id, role, model_id) SELECT id, 'lora', lora_id FROM "jobs" WHERE lora_id IS NOT NULL`);
    await q(`ALTER TABLE "jobs" DROP CONSTRAINT "generations_model_fk", DROP CONSTRAINT "generations_lora_fk"`);
    await q(`DROP INDEX "public"."generations_model"`);
    await q(`DROP INDEX "public"."generations_lora"`);
    await q(
      `ALTER TABLE "jobs" DROP COLUMN "prompt", DROP COLUMN "negative_prompt", DROP COLUMN "model_id", DROP COLUMN "lora_id",
         DROP COLUMN "lora_weight", DROP COLUMN "num_images", DROP COLUMN "steps", DROP COLUMN "guidance_scale",
         DROP COLUMN "width", DROP COLUMN "height", DROP COLUMN "seed", DROP COLUMN "previews", DROP COLUMN "scheduler"`,
    );
    await q(`ALTER INDEX "generations_created" RENAME TO "jobs_created"`);
    await q(`ALTER INDEX "generations_status_created" RENAME TO "jobs_status_created"`);
    await q(`ALTER INDEX "generations_running_lease" RENAME TO "jobs_running_lease"`);
    await q(`ALTER INDEX "generations_pending_deadline" RENAME TO "jobs_pending_deadline"`);
    await q(`CREATE INDEX "jobs_kind_status_created" ON "jobs"  ("kind", "status", "created_at", "id") `);
    await q(`CREATE INDEX "jobs_pending_queue" ON "jobs"  ("queue", "priority") WHERE status = 'PENDING'`);

    await q(`ALTER TABLE "generation_events" RENAME TO "job_events"`);
    await q(`ALTER TABLE "job_events" RENAME COLUMN "generation_id" TO "job_id"`);
    await q(`ALTER TABLE "job_events" RENAME CONSTRAINT "PK_6f706b927dca5dabc9929747583" TO "PK_3ebbcf54c2e3911bc10d315c9de"`);
    await q(`ALTER TABLE "job_events" RENAME CONSTRAINT "generation_events_generation_fk" TO "job_events_job_fk"`);
    await q(`ALTER TABLE "job_events" ADD "detail" jsonb`);

    await q(`ALTER TABLE "generation_attempts" RENAME TO "job_attempts"`);
    await q(`ALTER TABLE "job_attempts" RENAME COLUMN "generation_id" TO "job_id"`);
    await q(`ALTER TABLE "job_attempts" RENAME CONSTRAINT "PK_b4ad6be82f3e41de7c289d014c9" TO "PK_7ff1d97f4770417abe8b69d288c"`);
    await q(`ALTER TABLE "job_attempts" RENAME CONSTRAINT "generation_attempts_generation_fk" TO "job_attempts_job_fk"`);

    await q(`ALTER TABLE "images" RENAME TO "job_outputs"`);
    await q(`ALTER TABLE "job_outputs" RENAME COLUMN "generation_id" TO "job_id"`);
    await q(`ALTER TABLE "job_outputs" RENAME CONSTRAINT "PK_1fe148074c6a1a91b63cb9ee3c9" TO "PK_8009621fc9857e58aa174c6b07f"`);
    await q(`ALTER TABLE "job_outputs" RENAME CONSTRAINT "images_generation_fk" TO "job_outputs_job_fk"`);
    await q(`ALTER TABLE "job_outputs" RENAME CONSTRAINT "images_generation_index" TO "job_outputs_job_index"`);
    await q(`ALTER TABLE "job_outputs" ADD "media_type" text NOT NULL DEFAULT 'image', ADD "metadata" jsonb NOT NULL DEFAULT '{}'`);
    await q(`ALTER TABLE "job_outputs" ALTER COLUMN "media_type" DROP DEFAULT, ALTER COLUMN "bytes" TYPE bigint`);
    await q(`UPDATE "job_outputs" SET metadata = jsonb_build_object('width', width, 'height', height, 'seed', seed)`);
    await q(`ALTER TABLE "job_outputs" DROP COLUMN "width", DROP COLUMN "height", DROP COLUMN "seed"`);

    await q(`ALTER TABLE "idempotency_keys" RENAME COLUMN "generation_ids" TO "job_ids"`);

    await q(
      `CREATE TABLE "workers" ("id" text NOT NULL, "host" text NOT NULL, "pid" integer NOT NULL, "kinds" text array NOT NULL, "queues" text array NOT NULL, "providers" text array NOT NULL, "models_loaded" uuid array NOT NULL DEFAULT '{}', "current_jobs" uuid array NOT NULL DEFAULT '{}', "started_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "heartbeat_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_e950c9aba3bd84a4f193058d838" PRIMARY KEY ("id"))`,
    );
    await q(`CREATE INDEX "workers_heartbeat" ON "workers"  ("heartbeat_at") `);

    await q(`ALTER TABLE "job_models" ADD CONSTRAINT "job_models_job_fk" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q(`ALTER TABLE "job_models" ADD CONSTRAINT "job_models_model_fk" FOREIGN KEY ("model_id") REFERENCES "models"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`);
  }

  /** Back to generations: only image jobs can go back; other kinds' rows are dropped. */
  async down(runner: QueryRunner): Promise<void> {
    const q = (sql: string) => runner.query(sql);
    await q(`DROP TABLE "workers"`);
    await q(`ALTER TABLE "idempotency_keys" RENAME COLUMN "job_ids" TO "generation_ids"`);

    await q(`ALTER TABLE "job_outputs" ADD "width" integer, ADD "height" integer, ADD "seed" bigint`);
    await q(`UPDATE "job_outputs" SET width = (metadata->>'width')::int, height = (metadata->>'height')::int, seed = (metadata->>'seed')::bigint`);
    await q(`DELETE FROM "job_outputs" WHERE media_type <> 'image'`);
    await q(`ALTER TABLE "job_outputs" ALTER COLUMN "width" SET NOT NULL, ALTER COLUMN "height" SET NOT NULL, ALTER COLUMN "seed" SET NOT NULL`);
    await q(`ALTER TABLE "job_outputs" DROP COLUMN "media_type", DROP COLUMN "metadata", ALTER COLUMN "bytes" TYPE integer`);
    await q(`ALTER TABLE "job_outputs" RENAME CONSTRAINT "job_outputs_job_index" TO "images_generation_index"`);
    await q(`ALTER TABLE "job_outputs" RENAME CONSTRAINT "job_outputs_job_fk" TO "images_generation_fk"`);
    await q(`ALTER TABLE "job_outputs" RENAME CONSTRAINT "PK_8009621fc9857e58aa174c6b07f" TO "PK_1fe148074c6a1a91b63cb9ee3c9"`);
    await q(`ALTER TABLE "job_outputs" RENAME COLUMN "job_id" TO "generation_id"`);
    await q(`ALTER TABLE "job_outputs" RENAME TO "images"`);

    await q(`ALTER TABLE "job_attempts" RENAME CONSTRAINT "job_attempts_job_fk" TO "generation_attempts_generation_fk"`);
    await q(`ALTER TABLE "job_attempts" RENAME CONSTRAINT "PK_7ff1d97f4770417abe8b69d288c" TO "PK_b4ad6be82f3e41de7c289d014c9"`);
    await q(`ALTER TABLE "job_attempts" RENAME COLUMN "job_id" TO "generation_id"`);
    await q(`ALTER TABLE "job_attempts" RENAME TO "generation_attempts"`);

    await q(`ALTER TABLE "job_events" DROP COLUMN "detail"`);
    await q(`ALTER TABLE "job_events" RENAME CONSTRAINT "job_events_job_fk" TO "generation_events_generation_fk"`);
    await q(`ALTER TABLE "job_events" RENAME CONSTRAINT "PK_3ebbcf54c2e3911bc10d315c9de" TO "PK_6f706b927dca5dabc9929747583"`);
    await q(`ALTER TABLE "job_events" RENAME COLUMN "job_id" TO "generation_id"`);
    await q(`ALTER TABLE "job_events" RENAME TO "generation_events"`);

    await q(`DELETE FROM "jobs" WHERE kind <> 'image'`);
    await q(`DROP INDEX "public"."jobs_pending_queue"`);
    await q(`DROP INDEX "public"."jobs_kind_status_created"`);
    await q(`ALTER INDEX "jobs_pending_deadline" RENAME TO "generations_pending_deadline"`);
    await q(`ALTER INDEX "jobs_running_lease" RENAME TO "generations_running_lease"`);
    await q(`ALTER INDEX "jobs_status_created" RENAME TO "generations_status_created"`);
    await q(`ALTER INDEX "jobs_created" RENAME TO "generations_created"`);
    await q(
      `ALTER TABLE "jobs" ADD "prompt" text, ADD "negative_prompt" text, ADD "model_id" uuid, ADD "lora_id" uuid,
         ADD "lora_weight" double precision, ADD "num_images" integer, ADD "steps" integer, ADD "guidance_scale" double precision,
         ADD "width" integer, ADD "height" integer, ADD "seed" bigint, ADD "previews" boolean NOT NULL DEFAULT true, ADD "scheduler" text`,
    );
    await q(
      `UPDATE "jobs" SET prompt = params->>'prompt', negative_prompt = params->>'negativePrompt', model_id = (params->>'modelId')::uuid,
         lora_id = (params->>'loraId')::uuid, lora_weight = (params->>'loraWeight')::float, num_images = (params->>'numImages')::int,
         steps = (params->>'steps')::int, guidance_scale = (params->>'guidanceScale')::float, width = (params->>'width')::int,
         height = (params->>'height')::int, seed = (params->>'seed')::bigint, previews = COALESCE((params->>'previews')::boolean, true),
         scheduler = params->>'scheduler'`,
    );
    for (const column of ['prompt', 'model_id', 'num_images', 'steps', 'guidance_scale', 'width', 'height', 'seed']) {
      await q(`ALTER TABLE "jobs" ALTER COLUMN "${column}" SET NOT NULL`);
    }
    await q(`ALTER TABLE "jobs" DROP COLUMN "kind", DROP COLUMN "queue", DROP COLUMN "params", DROP COLUMN "affinity"`);
    await q(`CREATE INDEX "generations_model" ON "jobs"  ("model_id") `);
    await q(`CREATE INDEX "generations_lora" ON "jobs"  ("lora_id") `);
    await q(`ALTER TABLE "jobs" ADD CONSTRAINT "generations_model_fk" FOREIGN KEY ("model_id") REFERENCES "models"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`);
    await q(`ALTER TABLE "jobs" ADD CONSTRAINT "generations_lora_fk" FOREIGN KEY ("lora_id") REFERENCES "models"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`);
    await q(`DROP TABLE "job_models"`);
    await q(`ALTER TABLE "jobs" RENAME CONSTRAINT "jobs_status_check" TO "generations_status_check"`);
    await q(`ALTER TABLE "jobs" RENAME CONSTRAINT "PK_cf0a6c42b72fcc7f7c237def345" TO "PK_9d2a52fbde1fba42c24ec42ddd2"`);
    await q(`ALTER TABLE "jobs" RENAME TO "generations"`);
  }
}
